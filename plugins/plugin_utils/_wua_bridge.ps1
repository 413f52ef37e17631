# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

<#
.SYNOPSIS
Runs one wuacache.wua bridge operation on this Windows host.

.DESCRIPTION
The collection's action plugins send this script with a request over the
inventory's connection, as described in docs/bridge-protocol.md. The script
makes one short sequence of documented Windows Update Agent, Task Scheduler,
CIM, registry and file system calls and writes exactly one JSON document: the
raw values under "result", or the failing call under "error". Every decision
is made on the controller.

.PARAMETER Request
The request: "protocol" (the version the controller speaks), "operation" (the
name of the operation) and "params" (its parameters).

.PARAMETER ResponsePath
Where to write the JSON document instead of standard output, as the
scheduled task of an elevated run does: the document is written next to it
first and then renamed, so that a reader never sees it half written.

.OUTPUTS
System.String. One compressed JSON document, unless ResponsePath is given; the
exit code is 0 on success and 1 on failure.
#>
param($Request, $ResponsePath)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
# Progress records would reach the controller as CLIXML on standard error.
$ProgressPreference = 'SilentlyContinue'

$BridgeProtocol = 1

# IRegisteredTask.State (TASK_STATE_RUNNING).
$TaskStateRunning = 4
# HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND), the error of a task that does not exist.
$HResultFileNotFound = -2147024894

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

function ConvertTo-AsciiJson {
    <#
    .SYNOPSIS
    Compressed JSON with every non-ASCII character escaped, so that it survives any console code page.
    #>
    param([Parameter(Mandatory = $true)] [AllowNull()] $InputObject)
    $json = ConvertTo-Json -InputObject $InputObject -Depth 10 -Compress
    [regex]::Replace($json, '[^\x00-\x7F]', { param($character) '\u{0:x4}' -f [int][char]$character.Value })
}

function Get-RunFolder {
    <#
    .SYNOPSIS
    The folder of an elevated run, once its name is known to be safe in a path and a task name.
    #>
    param([string]$Name)
    # \z, not $: $ also matches before a final newline.
    if ($Name -cnotmatch '\A[A-Za-z0-9-]{1,64}\z') {
        throw [System.ArgumentException]::new("The run name '$Name' must be 1 to 64 letters, digits or dashes.")
    }
    Join-Path -Path $env:ProgramData -ChildPath "wuacache\runs\$Name"
}

function Connect-TaskService {
    <#
    .SYNOPSIS
    The local Task Scheduler, where the tasks of elevated runs are registered.
    #>
    # ITaskService::Connect, Task Scheduler 2.0 API.
    Invoke-BridgeCall 'Schedule.Service.Connect' {
        $service = New-Object -ComObject Schedule.Service
        $service.Connect()
        $service
    }
}

function Get-TaskRootFolder {
    <#
    .SYNOPSIS
    The Task Scheduler's root folder, which holds the tasks of elevated runs.
    #>
    param([Parameter(Mandatory = $true)] $Service)
    # ITaskService::GetFolder.
    Invoke-BridgeCall 'ITaskService.GetFolder' {
        $Service.GetFolder('\')
    }
}

function Start-ElevatedRun {
    <#
    .SYNOPSIS
    The "task_start" operation: a transient task that runs the envelope's request as SYSTEM.
    #>
    param(
        [Parameter(Mandatory = $true)] [AllowEmptyString()] [string]$Name,
        [Parameter(Mandatory = $true)] $Envelope,
        [Parameter(Mandatory = $true)] [Alias('task_arguments')] [string]$TaskArguments
    )
    $runFolder = Get-RunFolder -Name $Name

    # The task reads its envelope from the run's folder, its working directory.
    Invoke-BridgeCall 'New-Item run folder' {
        $null = New-Item -ItemType Directory -Path $runFolder -Force
        # File.WriteAllText writes UTF-8 without a byte order mark.
        [System.IO.File]::WriteAllText((Join-Path -Path $runFolder -ChildPath 'envelope.json'), (ConvertTo-AsciiJson -InputObject $Envelope))
    }

    $service = Connect-TaskService
    $root = Get-TaskRootFolder -Service $service

    # ITaskService::NewTask, then the principal, action and settings of the ITaskDefinition.
    $definition = Invoke-BridgeCall 'ITaskService.NewTask' {
        $definition = $service.NewTask(0)
        $definition.Principal.UserId = 'SYSTEM'
        $definition.Principal.LogonType = 5  # TASK_LOGON_SERVICE_ACCOUNT
        $definition.Principal.RunLevel = 1  # TASK_RUNLEVEL_HIGHEST
        $action = $definition.Actions.Create(0)  # TASK_ACTION_EXEC
        $action.Path = 'PowerShell.exe'
        $action.Arguments = $TaskArguments
        $action.WorkingDirectory = $runFolder
        $definition.Settings.ExecutionTimeLimit = 'PT4H'
        $definition.Settings.DisallowStartIfOnBatteries = $false
        $definition.Settings.StopIfGoingOnBatteries = $false
        $definition
    }

    # ITaskFolder::RegisterTaskDefinition (TASK_CREATE_OR_UPDATE, TASK_LOGON_SERVICE_ACCOUNT).
    $task = Invoke-BridgeCall 'ITaskFolder.RegisterTaskDefinition' {
        $root.RegisterTaskDefinition("wuacache-$Name", $definition, 6, $null, $null, 5)
    }

    # IRegisteredTask::Run.
    Invoke-BridgeCall 'IRegisteredTask.Run' {
        $null = $task.Run($null)
    }

    [ordered]@{
        task = $task.Path
        folder = $runFolder
    }
}

function Get-ElevatedRun {
    <#
    .SYNOPSIS
    The "task_poll" operation: where the task of an elevated run stands.
    #>
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string]$Name)
    $runFolder = Get-RunFolder -Name $Name
    $root = Get-TaskRootFolder -Service (Connect-TaskService)

    # ITaskFolder::GetTask, then IRegisteredTask's State and LastTaskResult. They are read
    # before the response file: a task seen ended has written its response by then.
    $status = Invoke-BridgeCall 'ITaskFolder.GetTask' {
        $task = $root.GetTask("wuacache-$Name")
        [ordered]@{
            state = $task.State
            last_task_result = $task.LastTaskResult
        }
    }

    $status.response_ready = Invoke-BridgeCall 'Test-Path response.json' {
        Test-Path -LiteralPath (Join-Path -Path $runFolder -ChildPath 'response.json')
    }
    $status
}

function Complete-ElevatedRun {
    <#
    .SYNOPSIS
    The "task_collect" operation: the run's response, if any, then neither its task nor its folder.
    #>
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string]$Name)
    $runFolder = Get-RunFolder -Name $Name

    $responsePath = Join-Path -Path $runFolder -ChildPath 'response.json'
    $response = Invoke-BridgeCall 'Get-Content response.json' {
        if (Test-Path -LiteralPath $responsePath) {
            [System.IO.File]::ReadAllText($responsePath)
        }
    }

    $root = Get-TaskRootFolder -Service (Connect-TaskService)
    # ITaskFolder::GetTask; a task that does not exist (ERROR_FILE_NOT_FOUND) has nothing to clean.
    $task = Invoke-BridgeCall 'ITaskFolder.GetTask' {
        try {
            $root.GetTask("wuacache-$Name")
        }
        catch [System.Management.Automation.MethodInvocationException] {
            if ($_.Exception.InnerException.HResult -ne $HResultFileNotFound) {
                throw
            }
        }
    }
    if ($null -ne $task) {
        # IRegisteredTask::Stop: deleting a task leaves its running instance alone, and that
        # instance would keep the run's folder (its working directory) from being removed.
        Invoke-BridgeCall 'IRegisteredTask.Stop' {
            if ($task.State -eq $TaskStateRunning) {
                $task.Stop(0)
            }
        }
        # ITaskFolder::DeleteTask.
        Invoke-BridgeCall 'ITaskFolder.DeleteTask' {
            $root.DeleteTask("wuacache-$Name", 0)
        }
    }

    Invoke-BridgeCall 'Remove-Item run folder' {
        if (Test-Path -LiteralPath $runFolder) {
            Remove-Item -LiteralPath $runFolder -Recurse -Force
        }
    }

    [ordered]@{
        response = $response
    }
}

function Get-RebootRequired {
    <#
    .SYNOPSIS
    The "reboot_required" operation (elevated): whether Windows Update waits for a restart.
    #>
    # ISystemInformation::RebootRequired, Windows Update Agent API; refused to a network logon.
    $rebootRequired = Invoke-BridgeCall 'Microsoft.Update.SystemInfo.RebootRequired' {
        (New-Object -ComObject Microsoft.Update.SystemInfo).RebootRequired
    }

    [ordered]@{
        reboot_required = $rebootRequired
    }
}

$operations = @{
    info = ${function:Get-HostInfo}
    task_start = ${function:Start-ElevatedRun}
    task_poll = ${function:Get-ElevatedRun}
    task_collect = ${function:Complete-ElevatedRun}
    reboot_required = ${function:Get-RebootRequired}
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

$json = ConvertTo-AsciiJson -InputObject $response
if ($ResponsePath) {
    # A task has no standard output to read: the response goes to a file, renamed into place once complete.
    $partialPath = "$ResponsePath.tmp"
    [System.IO.File]::WriteAllText($partialPath, $json)
    Move-Item -LiteralPath $partialPath -Destination $ResponsePath -Force
}
else {
    $json
}
exit $exitCode
