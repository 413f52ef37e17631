# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

<#
.SYNOPSIS
Runs one wuacache.wua bridge operation on this Windows host.

.DESCRIPTION
The collection's action plugins send this script with a request over the
inventory's connection, as described in docs/bridge-protocol.md. The script
makes one short sequence of documented Windows Update Agent, CIM and registry
calls and writes exactly one JSON document on standard output: the raw values
under "result", or the failing call under "error". Every decision is made on
the controller.

.PARAMETER Request
The request: "protocol" (the version the controller speaks), "operation" (the
name of the operation) and "params" (its parameters).

.OUTPUTS
System.String. One compressed JSON document; the exit code is 0 on success and
1 on failure.
#>
param($Request)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
# Progress records would reach the controller as CLIXML on standard error.
$ProgressPreference = 'SilentlyContinue'

$BridgeProtocol = 1

# The API call in progress, reported as "call" when it throws.
$script:BridgeCall = 'bridge request'

function Invoke-BridgeCall {
    <#
    .SYNOPSIS
    Runs one API call and remembers its name for the error object.
    #>
    param(
        [Parameter(Mandatory = $true)] [string]$Call,
        [Parameter(Mandatory = $true)] [scriptblock]$ScriptBlock
    )
    $script:BridgeCall = $Call
    & $ScriptBlock
}

function Get-HostInfo {
    <#
    .SYNOPSIS
    The "info" operation: what the controller needs to know about this host before patching it.
    #>
    # IUpdateAgentInfo::GetInfo("ProductVersionString"), Windows Update Agent API.
    $wuaVersion = Invoke-BridgeCall 'Microsoft.Update.AgentInfo.GetInfo' {
        (New-Object -ComObject Microsoft.Update.AgentInfo).GetInfo('ProductVersionString')
    }

    # Win32_OperatingSystem class, CIMWin32 WMI provider.
    $os = Invoke-BridgeCall 'Get-CimInstance Win32_OperatingSystem' {
        Get-CimInstance -ClassName Win32_OperatingSystem
    }

    # The update build revision is only in the registry (RegistryKey.GetValue, null when absent).
    $ubr = Invoke-BridgeCall 'Registry HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion' {
        (Get-Item -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion').GetValue('UBR')
    }

    # Win32_Service class, CIMWin32 WMI provider.
    $service = Invoke-BridgeCall 'Get-CimInstance Win32_Service' {
        Get-CimInstance -ClassName Win32_Service -Filter "Name='wuauserv'"
    }

    # Servicing and Windows Update mark a pending restart with these registry keys, and
    # MoveFileEx(MOVEFILE_DELAY_UNTIL_REBOOT) queues its renames in PendingFileRenameOperations.
    $rebootIndicators = @(Invoke-BridgeCall 'Registry reboot markers' {
        if (Test-Path -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending') {
            'cbs_reboot_pending'
        }
        if (Test-Path -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired') {
            'wu_reboot_required'
        }
        $sessionManager = Get-Item -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager'
        if ($null -ne $sessionManager.GetValue('PendingFileRenameOperations')) {
            'pending_file_rename'
        }
    })

    # Win32_LogicalDisk class, CIMWin32 WMI provider.
    $systemDrive = Invoke-BridgeCall 'Get-CimInstance Win32_LogicalDisk' {
        Get-CimInstance -ClassName Win32_LogicalDisk -Filter "DeviceID='$env:SystemDrive'"
    }

    [ordered]@{
        computer_name = $env:COMPUTERNAME
        wua_version = $wuaVersion
        os = [ordered]@{
            caption = $os.Caption
            version = $os.Version
            build_number = $os.BuildNumber
            ubr = $ubr
            architecture = $os.OSArchitecture
            product_type = $os.ProductType
            last_boot_up_time = $os.LastBootUpTime.ToUniversalTime().ToString('o')
        }
        wuauserv = [ordered]@{
            start_mode = $service.StartMode
            state = $service.State
        }
        reboot_indicators = $rebootIndicators
        system_drive = [ordered]@{
            device_id = $systemDrive.DeviceID
            free_bytes = $systemDrive.FreeSpace
            size_bytes = $systemDrive.Size
        }
    }
}

$operations = @{
    info = ${function:Get-HostInfo}
}

$response = [ordered]@{
    protocol = $BridgeProtocol
    operation = $null
}
try {
    $response.operation = [string]$Request.operation
    if ($Request.protocol -ne $BridgeProtocol) {
        throw [System.ArgumentException]::new("This bridge speaks protocol $BridgeProtocol, not $($Request.protocol).")
    }
    if (-not $operations.ContainsKey($response.operation)) {
        throw [System.ArgumentException]::new("Unknown bridge operation '$($response.operation)'.")
    }
    $parameters = @{}
    foreach ($property in $Request.params.PSObject.Properties) {
        $parameters[$property.Name] = $property.Value
    }
    $response.result = & $operations[$response.operation] @parameters
    $exitCode = 0
}
catch {
    # PowerShell wraps a failing COM method or property call (MethodInvocationException,
    # GetValueInvocationException); the HRESULT that names the failure is the inner one's.
    $exception = $_.Exception
    while ($exception -is [System.Management.Automation.RuntimeException] -and $null -ne $exception.InnerException) {
        $exception = $exception.InnerException
    }
    $response.error = [ordered]@{
        hresult = $exception.HResult
        message = $exception.Message
        call = $script:BridgeCall
    }
    $exitCode = 1
}

$json = ConvertTo-Json -InputObject $response -Depth 10 -Compress
# Escape non-ASCII characters so the document survives any console code page.
[regex]::Replace($json, '[^\x00-\x7F]', { param($character) '\u{0:x4}' -f [int][char]$character.Value })
exit $exitCode
