"""wuacache server: offline Windows Update catalog and need-driven update cache."""
