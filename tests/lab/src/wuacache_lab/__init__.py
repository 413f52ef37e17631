"""The wuacache lab: loopback stand-ins for Windows hosts and Microsoft's servers."""
