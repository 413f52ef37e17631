# wuacache.wua bridge: run the bridge with the request sent on standard input (docs/bridge-protocol.md).
# $input is standard input for powershell.exe and the input data for the psrp connection.
$ErrorActionPreference = 'Stop'
$envelope = (@($input) -join "`n") | ConvertFrom-Json
$bridge = $envelope.bridge
$sha256 = $envelope.bridge_sha256
$kept = @{}
if ($bridge) {
    $kept.KeepAs = $sha256
}
elseif ($sha256 -cmatch '^[0-9a-f]{64}$') {
    # The bridge the host keeps runs only if the very text read has the SHA-256 asked for.
    $path = "$env:ProgramData\wuacache\bridge\$sha256.ps1"
    if (Test-Path -LiteralPath $path -PathType Leaf) {
        $text = [System.IO.File]::ReadAllText($path)
        $stream = [System.IO.MemoryStream]::new([System.Text.Encoding]::UTF8.GetBytes($text))
        if ((Get-FileHash -InputStream $stream -Algorithm SHA256).Hash -eq $sha256) {
            $bridge = $text
        }
    }
}
if (-not $bridge) {
    '{"bridge_missing":true}'
    exit 1
}
& ([scriptblock]::Create($bridge)) $envelope.request -BridgeText $bridge @kept
