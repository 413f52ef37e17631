# wuacache.wua bridge: run the bridge script sent on standard input with its request.
# $input is standard input for powershell.exe and the input data for the psrp connection.
$ErrorActionPreference = 'Stop'
$envelope = (@($input) -join "`n") | ConvertFrom-Json
& ([scriptblock]::Create($envelope.bridge)) $envelope.request
