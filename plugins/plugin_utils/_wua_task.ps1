# wuacache.wua bridge task: run the bridge with the request of envelope.json, answering in response.json.
# The scheduled task of an elevated run starts it in the run's folder, with no standard input or output.
$ErrorActionPreference = 'Stop'
$envelope = Get-Content -LiteralPath 'envelope.json' -Raw -Encoding UTF8 | ConvertFrom-Json
& ([scriptblock]::Create($envelope.bridge)) $envelope.request -ResponsePath (Join-Path -Path (Get-Location) -ChildPath 'response.json')
