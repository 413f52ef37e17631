# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

<#
.SYNOPSIS
Runs one wuacache.wua bridge operation on this Windows host.

.DESCRIPTION
The collection's action plugins send this script with a request over the
inventory's connection, as described in docs/bridge-protocol.md. The script
makes one short sequence of documented Windows Update Agent, Task Scheduler,
CIM, registry, service, HTTP and file system calls and writes exactly one JSON document: the
raw values under "result", or the failing call under "error". Every decision
is made on the controller.

.PARAMETER Request
The request: "protocol" (the version the controller speaks), "operation" (the
name of the operation) and "params" (its parameters).

.PARAMETER ResponsePath
Where to write the JSON document instead of standard output, as the
scheduled task of an elevated run does: the document is written next to it
first and then renamed, so that a reader never sees it half written. The
long operations write where they stand into progress.json beside it, the
same way.

.PARAMETER BridgeText
The text of this script, as the bootstrap ran it: what an elevated run's
task runs.

.PARAMETER KeepAs
The SHA-256 the controller gave the script it sent whole: the script keeps
itself in the root under that name, so that the next commands send only
the digest.

.OUTPUTS
System.String. One compressed JSON document, unless ResponsePath is given; the
exit code is 0 on success and 1 on failure.
#>
# Advanced, like every function of the script: a parameter name nobody declared fails to bind.
[CmdletBinding()]
param($Request, $ResponsePath, [string]$BridgeText, [string]$KeepAs)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
# Progress records would reach the controller as CLIXML on standard error.
$ProgressPreference = 'SilentlyContinue'
# Unless the registry says otherwise, Windows PowerShell's .NET offers only SSL 3.0 and TLS 1.0, which
# servers refuse: TLS 1.2 is added to such an explicit set. SystemDefault (0) lets Windows choose,
# TLS 1.3 included where it has it, and stays: adding a flag to it would allow that flag alone.
if ([System.Net.ServicePointManager]::SecurityProtocol -ne [System.Net.SecurityProtocolType]::SystemDefault) {
    [System.Net.ServicePointManager]::SecurityProtocol = [System.Net.ServicePointManager]::SecurityProtocol -bor [System.Net.SecurityProtocolType]::Tls12
}

$BridgeProtocol = 1

# Everything the collection keeps on the host: the catalog, staged downloads, elevated runs.
$RootFolder = Join-Path -Path $env:ProgramData -ChildPath 'wuacache'
$CatalogPath = Join-Path -Path $RootFolder -ChildPath 'wsusscn2.cab'
$StagingFolder = Join-Path -Path $RootFolder -ChildPath 'staging'
$PackagesFolder = Join-Path -Path $RootFolder -ChildPath 'packages'
# The bridge the bootstrap runs without the controller sending it, named by its SHA-256.
$KeptBridgeFolder = Join-Path -Path $RootFolder -ChildPath 'bridge'
$OsUpgradeLogsFolder = Join-Path -Path $RootFolder -ChildPath 'logs\os_upgrade'
# Where the end of the servicing log is copied to be read, and deleted.
$ServicingLogTailPath = Join-Path -Path $RootFolder -ChildPath 'CBS.log.tail'
$RunsFolder = Join-Path -Path $RootFolder -ChildPath 'runs'
# The Task Scheduler folder of the elevated runs' tasks: everything in it is a run's.
$RunsTaskFolder = '\wuacache\runs'
# Held by one run at a time, from task_start to task_collect (Enter-HostLock).
$HostLockPath = Join-Path -Path $RootFolder -ChildPath 'host.lock'
# The Windows Update service's state before a run changed it, until the run restores it.
$WuauservRecordPath = Join-Path -Path $RootFolder -ChildPath 'wuauserv.json'
# The root's security descriptor ("Security Descriptor String Format", "ACE Strings" and "SID
# Strings", MicrosoftDocs/win32 desktop-src/SecAuthZ/): owner Administrators (BA); a DACL protected
# from inheritance (P), auto-inherited (AI), whose only entries allow (A) full control (FA) to SYSTEM
# (SY) and Administrators, inherited by subfolders (CI) and files (OI).
$PrivateFolderDacl = 'PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)'
$PrivateFolderSddl = "O:BAD:$PrivateFolderDacl"
# The only owners a root may have, as SDDL names them: nobody else can have planted files in it.
$PrivateFolderOwners = 'SY', 'BA'

# How long the Windows Update service may take to start or stop.
$ServiceTimeout = [timespan]::FromMinutes(2)

# IRegisteredTask.State (TASK_STATE_QUEUED, TASK_STATE_RUNNING).
$TaskStateQueued = 2
$TaskStateRunning = 4
# IRegisteredTask.LastTaskResult of a task whose instance has not started yet (SCHED_S_TASK_HAS_NOT_RUN):
# right after Run(), a task may still read as ready.
$TaskHasNotRun = 0x00041303
# HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND), the error of a task or task folder that does not exist.
$HResultFileNotFound = -2147024894
# HRESULT_FROM_WIN32(ERROR_BUSY): another run holds the host.
$HResultBusy = -2147024726
# A run's name becomes a folder and a task name. \z, not $: $ also matches before a final newline.
$RunNamePattern = '\A[A-Za-z0-9-]{1,64}\z'

# The API call in progress, reported as "call" when it throws.
$script:BridgeCall = 'bridge request'
# The first clean-up that failed (Add-CleanupError): the error of an operation that succeeded.
$script:CleanupError = $null

# Where an elevated run says where it stands, for task_poll; none outside a task.
$ProgressPath = if ($ResponsePath) { Join-Path -Path (Split-Path -Path $ResponsePath -Parent) -ChildPath 'progress.json' }
# How many times the run has said where it stands: a poll waits for a greater number.
$script:ProgressSequence = 0

function Set-FileText {
    <#
    .SYNOPSIS
    Writes a file next to its place and renames it over it, so that a reader never sees it half written.
    #>
    param(
        [Parameter(Mandatory = $true)] [string]$Path,
        [Parameter(Mandatory = $true)] [string]$Text
    )
    # File.WriteAllText writes UTF-8 without a byte order mark.
    [System.IO.File]::WriteAllText("$Path.tmp", $Text)
    Move-Item -LiteralPath "$Path.tmp" -Destination $Path -Force
}

function Read-JsonFile {
    <#
    .SYNOPSIS
    The object of a JSON file the bridge wrote, or null when there is no such file.
    #>
    param([Parameter(Mandatory = $true)] [string]$Path)
    if (Test-Path -LiteralPath $Path -PathType Leaf) {
        Get-Content -LiteralPath $Path -Raw -Encoding UTF8 | ConvertFrom-Json
    }
}

function Write-RunProgress {
    <#
    .SYNOPSIS
    Tells task_poll where the operation stands: its step, and how many of its items are done.
    #>
    param(
        [Parameter(Mandatory = $true)] [string]$Step,
        [Parameter(Mandatory = $true)] [int]$Done,
        [Parameter(Mandatory = $true)] [int]$Total,
        # Untyped: a [string] parameter would turn null into an empty string.
        $Item = $null
    )
    if (-not $ProgressPath) {
        return
    }
    $script:ProgressSequence++
    $progress = [ordered]@{ sequence = $script:ProgressSequence; step = $Step; done = $Done; total = $Total; item = $Item }
    try {
        Set-FileText -Path $ProgressPath -Text (ConvertTo-AsciiJson -InputObject $progress)
    }
    catch {
        # Progress is advisory: task_poll reading the file at that moment must not fail the operation.
        $null = $_
    }
}

function ConvertTo-BridgeError {
    <#
    .SYNOPSIS
    The "error" object of a failure: its HRESULT, its message and the call that failed.
    #>
    param(
        [Parameter(Mandatory = $true)] [System.Management.Automation.ErrorRecord]$ErrorRecord,
        [Parameter(Mandatory = $true)] [string]$Call
    )
    # PowerShell wraps a failing .NET or COM call: a COM method's COMException comes inside a
    # TargetInvocationException inside a MethodInvocationException (its COM adapter, ComMethod),
    # a property's inside a GetValueInvocationException. The HRESULT that names the failure is
    # the innermost one's.
    $exception = $ErrorRecord.Exception
    while (($exception -is [System.Management.Automation.RuntimeException] -or $exception -is [System.Reflection.TargetInvocationException]) -and $null -ne $exception.InnerException) {
        $exception = $exception.InnerException
    }
    $hresult = $exception.HResult
    # The service control manager's Win32 error comes as a Win32Exception inside the service
    # cmdlets' ServiceCommandException or ServiceController's InvalidOperationException; its
    # HResult is always E_FAIL, and its NativeErrorCode names the failure.
    $win32 = $exception
    while ($null -ne $win32 -and $win32 -isnot [System.ComponentModel.Win32Exception]) {
        $win32 = $win32.InnerException
    }
    if ($null -ne $win32) {
        $hresult = [int](0x80070000 -bor ($win32.NativeErrorCode -band 0xFFFF))
    }
    [ordered]@{
        hresult = $hresult
        message = $exception.Message
        call = $Call
    }
}

function Add-CleanupError {
    <#
    .SYNOPSIS
    Keeps aside the failure of a clean-up, which a finally block must not let replace the operation's own.

    .DESCRIPTION
    The clean-ups of an operation catch their own failures and leave $script:BridgeCall alone:
    a failed operation is reported with its own call. When the operation succeeded, the first
    clean-up that failed is the error.
    #>
    param(
        [Parameter(Mandatory = $true)] [System.Management.Automation.ErrorRecord]$ErrorRecord,
        [Parameter(Mandatory = $true)] [string]$Call
    )
    if ($null -eq $script:CleanupError) {
        $script:CleanupError = ConvertTo-BridgeError -ErrorRecord $ErrorRecord -Call $Call
    }
}

function ConvertTo-RoundTripUtc {
    <#
    .SYNOPSIS
    A Windows Update Agent date (UTC) in the round-trip format.

    .DESCRIPTION
    The agent's dates are UTC, but a COM DATE carries no time zone and reaches .NET with
    an unspecified kind, which ToUniversalTime() would take for local time.
    #>
    param([Parameter(Mandatory = $true)] [datetime]$Date)
    [datetime]::SpecifyKind($Date, 'Utc').ToString('o')
}

function Get-DownloadState {
    <#
    .SYNOPSIS
    What the root holds of downloads: the catalog and its digest, and the partial files a transfer left.

    .DESCRIPTION
    The controller compares the catalog's SHA-256 with the server's and fetches it only when they
    differ; it resumes each partial file from its length.
    #>
    $script:BridgeCall = 'Get-FileHash wsusscn2.cab'
    $catalog = [ordered]@{
        path = $CatalogPath
        size = $null
        sha256 = $null
        part_size = $null
    }
    if (Test-Path -LiteralPath $CatalogPath -PathType Leaf) {
        $catalog.size = (Get-Item -LiteralPath $CatalogPath).Length
        $catalog.sha256 = (Get-FileHash -LiteralPath $CatalogPath -Algorithm SHA256).Hash.ToLowerInvariant()
    }
    $script:BridgeCall = 'Get-ChildItem partial downloads'
    if (Test-Path -LiteralPath "$CatalogPath.part" -PathType Leaf) {
        $catalog.part_size = (Get-Item -LiteralPath "$CatalogPath.part").Length
    }
    # By the name of the file each part becomes.
    $stagedPartSizes = [ordered]@{}
    if (Test-Path -LiteralPath $StagingFolder -PathType Container) {
        foreach ($part in @(Get-ChildItem -LiteralPath $StagingFolder -Filter '*.part' -File -Force)) {
            $stagedPartSizes[$part.BaseName] = $part.Length
        }
    }
    [ordered]@{
        catalog = $catalog
        staged_part_sizes = $stagedPartSizes
    }
}

function Get-HostInfo {
    <#
    .SYNOPSIS
    The "info" operation: what the controller needs to know about this host before patching it.
    #>
    [CmdletBinding()]
    param(
        # Also what the root holds of downloads (Get-DownloadState), which hashes the catalog.
        [switch]$Downloads
    )
    # The Update Agent's version, read without calling it: IWindowsUpdateAgentInfo::GetInfo documents its
    # ProductVersionString as the file version of wuapi.dll, major.minor.build.update (MicrosoftDocs/sdk-api,
    # sdk-api-src/content/wuapi/nf-wuapi-iwindowsupdateagentinfo-getinfo.md): FileVersionInfo's four
    # File*Part numbers (dotnet/dotnet-api-docs, xml/System.Diagnostics/FileVersionInfo.xml).
    $script:BridgeCall = 'Get-Item wuapi.dll'
    $wuapi = (Get-Item -LiteralPath (Join-Path -Path $env:SystemRoot -ChildPath 'System32\wuapi.dll')).VersionInfo
    $wuaVersion = '{0}.{1}.{2}.{3}' -f $wuapi.FileMajorPart, $wuapi.FileMinorPart, $wuapi.FileBuildPart, $wuapi.FilePrivatePart

    # Win32_OperatingSystem class, CIMWin32 WMI provider.
    $script:BridgeCall = 'Get-CimInstance Win32_OperatingSystem'
    $os = Get-CimInstance -ClassName Win32_OperatingSystem

    # The update build revision is only in the registry (RegistryKey.GetValue, null when absent).
    $script:BridgeCall = 'Registry HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
    $ubr = (Get-Item -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion').GetValue('UBR')

    # Win32_Service class, CIMWin32 WMI provider.
    $script:BridgeCall = 'Get-CimInstance Win32_Service'
    $service = Get-CimInstance -ClassName Win32_Service -Filter "Name='wuauserv'"
    # The state before the run that holds the host, or before a run that died without restoring it.
    $script:BridgeCall = 'Get-Content wuauserv.json'
    $recordedService = Read-JsonFile -Path $WuauservRecordPath

    # Servicing and Windows Update mark a pending restart with these registry keys, and
    # MoveFileEx(MOVEFILE_DELAY_UNTIL_REBOOT) queues its renames in PendingFileRenameOperations.
    $script:BridgeCall = 'Registry reboot markers'
    $rebootIndicators = @()
    if (Test-Path -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending') {
        $rebootIndicators += 'cbs_reboot_pending'
    }
    if (Test-Path -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired') {
        $rebootIndicators += 'wu_reboot_required'
    }
    $sessionManager = Get-Item -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager'
    if ($null -ne $sessionManager.GetValue('PendingFileRenameOperations')) {
        $rebootIndicators += 'pending_file_rename'
    }

    # After a restart WinRM may answer before Windows has finished configuring updates: LogonUI
    # creates the volatile AutoLogonChecked key when it is about to show the logon screen, and
    # servicing says in ServicingInProgress whether it is still at work.
    $script:BridgeCall = 'Registry startup markers'
    $logonUiReady = Test-Path -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon\AutoLogonChecked'
    $servicingInProgress = $null
    $cbsInterface = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\Interface'
    if (Test-Path -LiteralPath $cbsInterface) {
        $servicingInProgress = (Get-Item -LiteralPath $cbsInterface).GetValue('ServicingInProgress')
    }

    # Win32_LogicalDisk class, CIMWin32 WMI provider.
    $script:BridgeCall = 'Get-CimInstance Win32_LogicalDisk'
    $systemDrive = Get-CimInstance -ClassName Win32_LogicalDisk -Filter "DeviceID='$env:SystemDrive'"

    $downloadState = $null
    if ($Downloads) {
        $downloadState = Get-DownloadState
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
            recorded = $recordedService
        }
        reboot_indicators = $rebootIndicators
        startup = [ordered]@{
            logon_ui_ready = $logonUiReady
            servicing_in_progress = $servicingInProgress
        }
        system_drive = [ordered]@{
            device_id = $systemDrive.DeviceID
            free_bytes = $systemDrive.FreeSpace
            size_bytes = $systemDrive.Size
        }
        downloads = $downloadState
    }
}

function ConvertTo-AsciiJson {
    <#
    .SYNOPSIS
    Compressed JSON with every non-ASCII character escaped, so that it survives any console code page.
    #>
    param([Parameter(Mandatory = $true)] [AllowNull()] $InputObject)
    $json = ConvertTo-Json -InputObject $InputObject -Depth 10 -Compress
    # -csplit keeps what its pattern captures: every other part is one non-ASCII character (a
    # UTF-16 code unit). Case-sensitive: ignoring case would let the Kelvin sign pass as a k.
    $parts = $json -csplit '([^\x00-\x7F])'
    for ($index = 1; $index -lt $parts.Count; $index += 2) {
        $parts[$index] = '\u{0:x4}' -f [int][char]$parts[$index]
    }
    -join $parts
}

function Assert-PrivateItem {
    <#
    .SYNOPSIS
    Refuses an item of the root that is a link or belongs to anyone but SYSTEM or Administrators; returns its SDDL.
    #>
    param([Parameter(Mandatory = $true)] $Item)
    if ($Item.Attributes -band [System.IO.FileAttributes]::ReparsePoint) {
        throw [System.UnauthorizedAccessException]::new("$($Item.FullName) is a link; the bridge only uses a folder of its own.")
    }
    # The owner part of the item's SDDL: an alias (SY, BA...) or a SID string.
    $sddl = (Get-Acl -LiteralPath $Item.FullName).Sddl
    $owner = $sddl -creplace '\AO:([A-Z]{2}|S-1(-[0-9]+)+).*\z', '$1'
    if ($PrivateFolderOwners -cnotcontains $owner) {
        throw [System.UnauthorizedAccessException]::new("$($Item.FullName) belongs to $owner, not to SYSTEM or Administrators.")
    }
    $sddl
}

function Initialize-PrivateFolder {
    <#
    .SYNOPSIS
    Makes the root a folder only SYSTEM and Administrators can write in, before anything is written there.

    .DESCRIPTION
    What a SYSTEM task reads from the root runs as SYSTEM. A new root is created with its own
    ACL at once (full control for SYSTEM and Administrators only, nothing inherited from
    ProgramData, where every user may create files), so that no moment exists when another
    user could create something in it. The root, new or not, must belong to SYSTEM or
    Administrators and be no link. Once it has its own DACL, only SYSTEM and administrators
    can have created anything in it. Otherwise everything in it must belong to SYSTEM or
    Administrators and hold no link (a junction would redirect the ACL and the deletes
    elsewhere): anything else was planted, and the bridge refuses the root without writing
    anything; the root's ACL is then set again.
    #>
    $script:BridgeCall = 'Initialize-PrivateFolder'
    $acl = New-Object -TypeName System.Security.AccessControl.DirectorySecurity
    $acl.SetSecurityDescriptorSddlForm($PrivateFolderSddl)
    if (-not (Test-Path -LiteralPath $RootFolder)) {
        # CreateDirectory returns a folder that exists as it is: one another user created since
        # Test-Path is checked below like any other.
        $null = [System.IO.Directory]::CreateDirectory($RootFolder, $acl)
    }
    $root = Get-Item -LiteralPath $RootFolder -Force
    # What an administrator creates in a private root belongs to that administrator where the
    # policy "System objects: Default owner for objects created by members of the Administrators
    # group" is "Object creator", the default of client editions (learn.microsoft.com,
    # windows/security/threat-protection/security-policy-settings/system-objects-default-owner-for-objects-created-by-members-of-the-administrators-group):
    # its owners are not checked, nobody else could create it.
    if (((Assert-PrivateItem -Item $root) -creplace '\A.*?D:', '') -ceq $PrivateFolderDacl) {
        return
    }
    # Folder by folder, so that a link is refused before anything behind it is read.
    $folders = @($root)
    for ($index = 0; $index -lt $folders.Count; $index++) {
        foreach ($item in @(Get-ChildItem -LiteralPath $folders[$index].FullName -Force)) {
            $null = Assert-PrivateItem -Item $item
            if ($item.PSIsContainer) {
                $folders += $item
            }
        }
    }
    Set-Acl -LiteralPath $RootFolder -AclObject $acl
}

function Invoke-Process {
    <#
    .SYNOPSIS
    Runs a program without a window, waits for it alone and returns its exit code.

    .DESCRIPTION
    Start-Process -Wait would also wait for every process the program leaves behind. The
    program starts in the system folder, not in the run's folder, which it would keep in use.
    #>
    param(
        [Parameter(Mandatory = $true)] [string]$FilePath,
        [Parameter(Mandatory = $true)] [string[]]$ArgumentList
    )
    $process = Start-Process -FilePath $FilePath -ArgumentList $ArgumentList -WorkingDirectory $env:SystemRoot -WindowStyle Hidden -PassThru
    # Reading Handle keeps the process object able to give ExitCode once it has exited.
    $null = $process.Handle
    $process.WaitForExit()
    $process.ExitCode
}

function Get-RunFolder {
    <#
    .SYNOPSIS
    The folder of an elevated run, once its name is known to be safe in a path and a task name.
    #>
    [CmdletBinding()]
    param([string]$Name)
    if ($Name -cnotmatch $RunNamePattern) {
        throw [System.ArgumentException]::new("The run name '$Name' must be 1 to 64 letters, digits or dashes.")
    }
    Join-Path -Path $RunsFolder -ChildPath $Name
}

function Connect-TaskService {
    <#
    .SYNOPSIS
    The local Task Scheduler, where the tasks of elevated runs are registered.
    #>
    # ITaskService::Connect, Task Scheduler 2.0 API.
    $script:BridgeCall = 'Schedule.Service.Connect'
    $service = New-Object -ComObject Schedule.Service
    $service.Connect()
    $service
}

function Test-ErrorHResult {
    <#
    .SYNOPSIS
    Whether a failure is the one of an HRESULT, once unwrapped as the bridge reports it.
    #>
    param(
        [Parameter(Mandatory = $true)] [System.Management.Automation.ErrorRecord]$ErrorRecord,
        [Parameter(Mandatory = $true)] [int]$HResult
    )
    (ConvertTo-BridgeError -ErrorRecord $ErrorRecord -Call $script:BridgeCall).hresult -eq $HResult
}

function Get-RunTaskFolder {
    <#
    .SYNOPSIS
    The Task Scheduler folder of the elevated runs' tasks, created the first time.
    #>
    param([Parameter(Mandatory = $true)] $Service)
    # ITaskService::GetFolder fails with ERROR_FILE_NOT_FOUND for a folder that does not exist;
    # ITaskFolder::CreateFolder creates the folders of the path that do not.
    $script:BridgeCall = 'ITaskService.GetFolder'
    try {
        return $Service.GetFolder($RunsTaskFolder)
    }
    catch [System.Management.Automation.MethodInvocationException] {
        if (-not (Test-ErrorHResult -ErrorRecord $_ -HResult $HResultFileNotFound)) {
            throw
        }
    }
    $script:BridgeCall = 'ITaskFolder.CreateFolder'
    $Service.GetFolder('\').CreateFolder($RunsTaskFolder)
}

function Get-RunTask {
    <#
    .SYNOPSIS
    The task of an elevated run, or null when it does not exist.
    #>
    param(
        [Parameter(Mandatory = $true)] $TaskFolder,
        [Parameter(Mandatory = $true)] [string]$Name
    )
    # ITaskFolder::GetTask fails with ERROR_FILE_NOT_FOUND for a task that does not exist.
    $script:BridgeCall = 'ITaskFolder.GetTask'
    try {
        $TaskFolder.GetTask($Name)
    }
    catch [System.Management.Automation.MethodInvocationException] {
        if (-not (Test-ErrorHResult -ErrorRecord $_ -HResult $HResultFileNotFound)) {
            throw
        }
    }
}

function Remove-RunTask {
    <#
    .SYNOPSIS
    Stops the task of an elevated run if it is running, then deletes it, if it exists.
    #>
    param(
        [Parameter(Mandatory = $true)] $TaskFolder,
        [Parameter(Mandatory = $true)] [string]$Name
    )
    $task = Get-RunTask -TaskFolder $TaskFolder -Name $Name
    if ($null -eq $task) {
        return
    }
    # IRegisteredTask::Stop: deleting a task leaves its running instance alone, and that
    # instance would keep the run's folder (its working directory) from being removed.
    $script:BridgeCall = 'IRegisteredTask.Stop'
    if ($task.State -eq $TaskStateRunning) {
        $task.Stop(0)
        # Stop returns before the instance has ended, which may take a while.
        $deadline = (Get-Date).AddSeconds(60)
        while ($task.State -eq $TaskStateRunning -and (Get-Date) -lt $deadline) {
            Start-Sleep -Milliseconds 500
        }
    }
    # ITaskFolder::DeleteTask.
    $script:BridgeCall = 'ITaskFolder.DeleteTask'
    $TaskFolder.DeleteTask($Name, 0)
}

function Get-RunRecordPath {
    <#
    .SYNOPSIS
    Where the record of an elevated run is kept: beside its folder, so that it outlives a folder removed in part.
    #>
    param([Parameter(Mandatory = $true)] [string]$Name)
    Join-Path -Path $RunsFolder -ChildPath "$Name.json"
}

function Remove-RunFolder {
    <#
    .SYNOPSIS
    Removes the folder of an elevated run, then its record, if they exist.
    #>
    param([Parameter(Mandatory = $true)] [string]$Name)
    $runFolder = Get-RunFolder -Name $Name
    $script:BridgeCall = 'Remove-Item run folder'
    foreach ($path in $runFolder, (Get-RunRecordPath -Name $Name)) {
        if (Test-Path -LiteralPath $path) {
            Remove-Item -LiteralPath $path -Recurse -Force
        }
    }
}

function New-RunRecord {
    <#
    .SYNOPSIS
    The record of an elevated run: its name, when it started, and until when it may hold the host.
    #>
    param(
        [Parameter(Mandatory = $true)] [string]$Name,
        [Parameter(Mandatory = $true)] [int]$TimeLimit
    )
    $started = [datetime]::UtcNow
    [ordered]@{
        name = $Name
        started = $started.ToString('o')
        expires = $started.AddSeconds($TimeLimit).ToString('o')
    }
}

function Test-RunExpired {
    <#
    .SYNOPSIS
    Whether the time of a run is up, by its record.
    #>
    param([Parameter(Mandatory = $true)] $Record)
    # Parse reads the round-trip format as local time; both sides compare in UTC.
    [datetime]::Parse($Record.expires).ToUniversalTime() -le [datetime]::UtcNow
}

function Get-HostLockHolder {
    <#
    .SYNOPSIS
    The record of the run that holds the host lock, with "alive".

    .DESCRIPTION
    A holder is alive until its time is up, while its task exists: a run registers its task
    before it takes the lock, and the task goes when the run is collected.
    #>
    param([Parameter(Mandatory = $true)] $TaskFolder)
    $script:BridgeCall = 'host.lock'
    $holder = Get-Content -LiteralPath $HostLockPath -Raw -Encoding UTF8 | ConvertFrom-Json
    $alive = -not (Test-RunExpired -Record $holder) -and $null -ne (Get-RunTask -TaskFolder $TaskFolder -Name $holder.name)
    # A busy error names the lock, not the task looked for.
    $script:BridgeCall = 'host.lock'
    [ordered]@{
        name = $holder.name
        started = $holder.started
        expires = $holder.expires
        alive = $alive
    }
}

function New-HostBusyError {
    <#
    .SYNOPSIS
    The failure of an operation that another run's hold on the host forbids (ERROR_BUSY).
    #>
    param([Parameter(Mandatory = $true)] $Holder)
    [System.IO.IOException]::new("Another run holds this host: '$($Holder.name)', since $($Holder.started), until $($Holder.expires) at the latest.", $HResultBusy)
}

function Assert-HostLockFree {
    <#
    .SYNOPSIS
    Fails with ERROR_BUSY while a live run holds the host, for the operations that change what a run uses.
    #>
    if (-not (Test-Path -LiteralPath $HostLockPath)) {
        return
    }
    $holder = Get-HostLockHolder -TaskFolder (Get-RunTaskFolder -Service (Connect-TaskService))
    if ($holder.alive) {
        throw (New-HostBusyError -Holder $holder)
    }
}

function Publish-HostLock {
    <#
    .SYNOPSIS
    Renames a run's lock file into place; false when the host lock exists.
    #>
    param([Parameter(Mandatory = $true)] [string]$Candidate)
    # Without -Force, Move-Item renames with FileInfo.MoveTo, which fails when the destination
    # exists (PowerShell's FileSystemProvider.MoveFileInfoItem; MoveFileEx without
    # MOVEFILE_REPLACE_EXISTING): of two runs, one only takes the lock, and nobody reads it half written.
    try {
        Move-Item -LiteralPath $Candidate -Destination $HostLockPath
        $true
    }
    catch [System.IO.IOException] {
        if (-not (Test-Path -LiteralPath $HostLockPath)) {
            throw
        }
        $false
    }
}

function Enter-HostLock {
    <#
    .SYNOPSIS
    Takes the host lock for a run whose task is registered, taking it over from a run that died.

    .DESCRIPTION
    The lock spans a whole run, from task_start to task_collect, so that no two runs change
    the Windows Update service, the staging folder or the Update Agent at once. While a live
    run holds it, this fails with ERROR_BUSY. A holder whose time is up, or whose task is
    gone, died without being collected: its task and folder are removed before the lock
    changes hands. Once the lock is taken, the Windows Update service goes back to the state
    a run that died recorded. Host-side schedules take the same lock with these functions.
    #>
    param(
        [Parameter(Mandatory = $true)] $Record,
        [Parameter(Mandatory = $true)] $TaskFolder
    )
    $script:BridgeCall = 'host.lock'
    $candidate = Join-Path -Path $RunsFolder -ChildPath "$($Record.name)\host.lock"
    [System.IO.File]::WriteAllText($candidate, (ConvertTo-AsciiJson -InputObject $Record))
    if (-not (Publish-HostLock -Candidate $candidate)) {
        $holder = Get-HostLockHolder -TaskFolder $TaskFolder
        if ($holder.alive) {
            throw (New-HostBusyError -Holder $holder)
        }
        Remove-RunTask -TaskFolder $TaskFolder -Name $holder.name
        Remove-RunFolder -Name $holder.name
        $script:BridgeCall = 'host.lock'
        Remove-Item -LiteralPath $HostLockPath -Force
        # Fails with ERROR_ALREADY_EXISTS if another run took the lock over meanwhile.
        Move-Item -LiteralPath $candidate -Destination $HostLockPath
    }
    # With no other run on the host, a record of the service's state is one a run that died left.
    Restore-RecordedWindowsUpdateService
}

function Exit-HostLock {
    <#
    .SYNOPSIS
    Releases the host lock if the run given holds it; first, for a run that died, restores the Windows Update service it left.
    #>
    param(
        [Parameter(Mandatory = $true)] [string]$Name,
        # The run ended without restoring the service (its process was ended).
        [switch]$RestoreWindowsUpdateService
    )
    $script:BridgeCall = 'host.lock'
    $holder = Read-JsonFile -Path $HostLockPath
    if ($null -eq $holder -or $holder.name -cne $Name) {
        return
    }
    try {
        # Before the next run may start and record the service's state itself.
        if ($RestoreWindowsUpdateService) {
            Restore-RecordedWindowsUpdateService
        }
    }
    finally {
        $script:BridgeCall = 'host.lock'
        Remove-Item -LiteralPath $HostLockPath -Force
    }
}

function Remove-ExpiredRun {
    <#
    .SYNOPSIS
    Removes the tasks and folders that runs left behind once their time is up.

    .DESCRIPTION
    A run's record says until when it may run. A task of the runs' task folder, or a record,
    left without the rest of its run is removed too; a folder without a record is not a
    run's, and stays. What cannot be removed now is tried again at the next start.
    #>
    param(
        [Parameter(Mandatory = $true)] $TaskFolder,
        # The run starting, which holds the host.
        [Parameter(Mandatory = $true)] [string]$Except
    )
    # The names of the runs' tasks, folders and records; a hashtable's keys are unique, whatever their case.
    $names = @{}
    $script:BridgeCall = 'ITaskFolder.GetTasks'
    foreach ($task in $TaskFolder.GetTasks(0)) {
        $names[$task.Name] = $true
    }
    $script:BridgeCall = 'Get-ChildItem runs'
    foreach ($folder in @(Get-ChildItem -LiteralPath $RunsFolder -Directory -Force)) {
        $names[$folder.Name] = $true
    }
    foreach ($record in @(Get-ChildItem -LiteralPath $RunsFolder -Filter '*.json' -File -Force)) {
        $names[$record.BaseName] = $true
    }
    foreach ($name in @($names.Keys)) {
        if ($name -eq $Except -or $name -cnotmatch $RunNamePattern) {
            continue
        }
        $record = Read-JsonFile -Path (Get-RunRecordPath -Name $name)
        if (($null -ne $record -and -not (Test-RunExpired -Record $record)) -or ($null -eq $record -and (Test-Path -LiteralPath (Get-RunFolder -Name $name)))) {
            continue
        }
        try {
            Remove-RunTask -TaskFolder $TaskFolder -Name $name
            Remove-RunFolder -Name $name
        }
        catch {
            $null = $_
        }
    }
}

function Start-ElevatedRun {
    <#
    .SYNOPSIS
    The "task_start" operation: a transient task that runs the envelope's request as SYSTEM.

    .DESCRIPTION
    The run holds the host from here to task_collect (Enter-HostLock). Having taken it, it
    removes what earlier runs left behind once their time is up (Remove-ExpiredRun).

    The task runs this bridge (BridgeText) with the envelope's request. Its status is then
    answered as task_poll answers it, after the same wait.
    #>
    param(
        [Parameter(Mandatory = $true)] [AllowEmptyString()] [string]$Name,
        [Parameter(Mandatory = $true)] $Envelope,
        [Parameter(Mandatory = $true)] [Alias('task_arguments')] [string]$TaskArguments,
        # Seconds: the task's execution time limit, and how long the run may hold the host.
        [Parameter(Mandatory = $true)] [Alias('time_limit')] [int]$TimeLimit,
        [Alias('wait_seconds')] [int]$WaitSeconds = 0,
        [Alias('interval_milliseconds')] [int]$IntervalMilliseconds = 1000,
        [switch]$Collect
    )
    $runFolder = Get-RunFolder -Name $Name
    Initialize-PrivateFolder

    # The task reads its envelope from the run's folder, its working directory.
    # A new folder: one that exists already was not made by this run.
    $script:BridgeCall = 'New-Item run folder'
    $null = New-Item -ItemType Directory -Path $runFolder
    $record = New-RunRecord -Name $Name -TimeLimit $TimeLimit
    # File.WriteAllText writes UTF-8 without a byte order mark.
    [System.IO.File]::WriteAllText((Get-RunRecordPath -Name $Name), (ConvertTo-AsciiJson -InputObject $record))
    $taskEnvelope = [ordered]@{
        bridge = $BridgeText
        request = $Envelope.request
    }
    [System.IO.File]::WriteAllText((Join-Path -Path $runFolder -ChildPath 'envelope.json'), (ConvertTo-AsciiJson -InputObject $taskEnvelope))

    $service = Connect-TaskService
    $taskFolder = Get-RunTaskFolder -Service $service

    # ITaskService::NewTask, then the principal, action and settings of the ITaskDefinition.
    $script:BridgeCall = 'ITaskService.NewTask'
    $definition = $service.NewTask(0)
    $definition.Principal.UserId = 'SYSTEM'
    $definition.Principal.LogonType = 5  # TASK_LOGON_SERVICE_ACCOUNT
    $definition.Principal.RunLevel = 1  # TASK_RUNLEVEL_HIGHEST
    $action = $definition.Actions.Create(0)  # TASK_ACTION_EXEC
    $action.Path = Join-Path -Path $env:SystemRoot -ChildPath 'System32\WindowsPowerShell\v1.0\powershell.exe'
    $action.Arguments = $TaskArguments
    $action.WorkingDirectory = $runFolder
    # An ISO 8601 duration. Windows does not stop a task started on demand at its limit.
    $definition.Settings.ExecutionTimeLimit = "PT$($TimeLimit)S"
    # The default, 7, runs the task and what it starts (setup.exe, DISM) below normal priority.
    $definition.Settings.Priority = 4
    $definition.Settings.DisallowStartIfOnBatteries = $false
    $definition.Settings.StopIfGoingOnBatteries = $false

    # ITaskFolder::RegisterTaskDefinition (TASK_CREATE_OR_UPDATE, TASK_LOGON_SERVICE_ACCOUNT).
    $script:BridgeCall = 'ITaskFolder.RegisterTaskDefinition'
    $task = $taskFolder.RegisterTaskDefinition($Name, $definition, 6, $null, $null, 5)

    Enter-HostLock -Record $record -TaskFolder $taskFolder
    Remove-ExpiredRun -TaskFolder $taskFolder -Except $Name

    # IRegisteredTask::Run.
    $script:BridgeCall = 'IRegisteredTask.Run'
    $null = $task.Run($null)

    [ordered]@{
        task = $task.Path
        folder = $runFolder
        status = Get-ElevatedRun -Name $Name -WaitSeconds $WaitSeconds -IntervalMilliseconds $IntervalMilliseconds -Collect:$Collect
    }
}

function Get-ElevatedRun {
    <#
    .SYNOPSIS
    The "task_poll" operation: where the task of an elevated run stands, once that has changed.

    .DESCRIPTION
    A long poll: waits up to WaitSeconds, looking every IntervalMilliseconds, until the task
    has ended or has said where it stands after ProgressSequence. With Collect, an ended run is
    collected at once (task_collect) and its answer returned under "collected".
    #>
    param(
        [Parameter(Mandatory = $true)] [AllowEmptyString()] [string]$Name,
        [Alias('wait_seconds')] [int]$WaitSeconds = 0,
        [Alias('interval_milliseconds')] [int]$IntervalMilliseconds = 1000,
        [Alias('progress_sequence')] [int]$ProgressSequence = 0,
        [switch]$Collect
    )
    $deadline = (Get-Date).AddSeconds($WaitSeconds)
    while ($true) {
        $status = Read-ElevatedRun -Name $Name
        $ended = $status.state -notin @($TaskStateQueued, $TaskStateRunning) -and $status.last_task_result -ne $TaskHasNotRun
        $moved = $null -ne $status.progress -and $status.progress.sequence -gt $ProgressSequence
        if ($ended -or $moved -or (Get-Date) -ge $deadline) {
            break
        }
        Start-Sleep -Milliseconds $IntervalMilliseconds
    }
    if ($ended -and $Collect) {
        $status.collected = Complete-ElevatedRun -Name $Name
    }
    $status
}

function Read-ElevatedRun {
    <#
    .SYNOPSIS
    Where the task of an elevated run stands: its state, last result and progress, and whether its response is written.
    #>
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string]$Name)
    $runFolder = Get-RunFolder -Name $Name
    $taskFolder = Get-RunTaskFolder -Service (Connect-TaskService)

    # ITaskFolder::GetTask, then IRegisteredTask's State and LastTaskResult. They are read
    # before the response file: a task seen ended has written its response by then.
    $script:BridgeCall = 'ITaskFolder.GetTask'
    $task = $taskFolder.GetTask($Name)
    $status = [ordered]@{
        state = $task.State
        last_task_result = $task.LastTaskResult
        response_ready = $null
        progress = $null
        collected = $null
    }

    $script:BridgeCall = 'Test-Path response.json'
    $status.response_ready = Test-Path -LiteralPath (Join-Path -Path $runFolder -ChildPath 'response.json')
    # Written by the run itself (Write-RunProgress): absent for a moment while it is replaced.
    $script:BridgeCall = 'Get-Content progress.json'
    $progressPath = Join-Path -Path $runFolder -ChildPath 'progress.json'
    $progressText = Get-Content -LiteralPath $progressPath -Raw -Encoding UTF8 -ErrorAction SilentlyContinue
    if ($progressText) {
        $status.progress = $progressText | ConvertFrom-Json
    }
    $status
}

function Complete-ElevatedRun {
    <#
    .SYNOPSIS
    The "task_collect" operation: the run's response, if any, then neither its task nor its folder, nor its hold on the host.

    .DESCRIPTION
    A clean-up that fails does not undo what the run did: the answer carries the response
    and the first clean-up error. The host lock is released once the run's task is gone;
    a run whose process was ended before it could answer has left the Windows Update
    service started, which goes back to the state recorded before the run.
    #>
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string]$Name)
    $runFolder = Get-RunFolder -Name $Name

    $script:BridgeCall = 'Get-Content response.json'
    $responsePath = Join-Path -Path $runFolder -ChildPath 'response.json'
    $response = $null
    if (Test-Path -LiteralPath $responsePath) {
        $response = [System.IO.File]::ReadAllText($responsePath)
    }

    $taskFolder = Get-RunTaskFolder -Service (Connect-TaskService)
    try {
        Remove-RunTask -TaskFolder $taskFolder -Name $Name
        Exit-HostLock -Name $Name -RestoreWindowsUpdateService:($null -eq $response)
    }
    catch {
        Add-CleanupError -ErrorRecord $_ -Call $script:BridgeCall
    }
    try {
        Remove-RunFolder -Name $Name
    }
    catch {
        Add-CleanupError -ErrorRecord $_ -Call $script:BridgeCall
    }

    # Reported with the response, not in place of it.
    $cleanupError = $script:CleanupError
    $script:CleanupError = $null
    [ordered]@{
        response = $response
        cleanup_error = $cleanupError
    }
}

function Get-SystemRebootRequired {
    <#
    .SYNOPSIS
    Whether Windows Update waits for a restart (ISystemInformation::RebootRequired).
    #>
    # Windows Update Agent API; refused to a network logon.
    $script:BridgeCall = 'Microsoft.Update.SystemInfo.RebootRequired'
    (New-Object -ComObject Microsoft.Update.SystemInfo).RebootRequired
}

function Get-RebootRequired {
    <#
    .SYNOPSIS
    The "reboot_required" operation (elevated): whether Windows Update waits for a restart.
    #>
    param([Parameter(Mandatory = $true)] [Alias('wuauserv_after')] $WuauservAfter)
    try {
        Start-WindowsUpdateService
        [ordered]@{
            reboot_required = Get-SystemRebootRequired
        }
    }
    finally {
        Restore-WindowsUpdateService -WuauservAfter $WuauservAfter
    }
}

function Start-WindowsUpdateService {
    <#
    .SYNOPSIS
    Starts the Windows Update service, which every Windows Update Agent call and wusa.exe need.

    .DESCRIPTION
    The service may be disabled between operations. An operation calls this first in a try
    whose finally calls Restore-WindowsUpdateService, whatever happens. Its state is recorded
    first, for a run whose process is ended before its finally: a record that exists already
    was left by such a run, and holds the state from before that run.
    #>
    Initialize-PrivateFolder
    $script:BridgeCall = 'Start wuauserv'
    if (-not (Test-Path -LiteralPath $WuauservRecordPath)) {
        $service = Get-Service -Name wuauserv
        $recorded = [ordered]@{
            start_mode = [string]$service.StartType
            running = $service.Status -eq 'Running'
        }
        Set-FileText -Path $WuauservRecordPath -Text (ConvertTo-AsciiJson -InputObject $recorded)
    }
    Set-Service -Name wuauserv -StartupType Manual
    # Start-Service has no -NoWait (only Stop-Service has) and would wait without end for a
    # service stuck starting: ServiceController.Start returns at once, and the wait is bounded.
    # Start refuses a service that is not stopped (ERROR_SERVICE_ALREADY_RUNNING).
    $service = Get-Service -Name wuauserv
    if ($service.Status -eq 'StopPending') {
        $service.WaitForStatus('Stopped', $ServiceTimeout)
    }
    if ($service.Status -eq 'Stopped') {
        $service.Start()
    }
    $service.WaitForStatus('Running', $ServiceTimeout)
}

function Set-WindowsUpdateService {
    <#
    .SYNOPSIS
    Gives the Windows Update service a start mode, and stops it unless it is to keep running; then forgets the state recorded before the run.
    #>
    param([Parameter(Mandatory = $true)] $State)
    Set-Service -Name wuauserv -StartupType $State.start_mode
    if (-not $State.running) {
        Stop-Service -Name wuauserv -Force -NoWait
        (Get-Service -Name wuauserv).WaitForStatus('Stopped', $ServiceTimeout)
    }
    if (Test-Path -LiteralPath $WuauservRecordPath) {
        Remove-Item -LiteralPath $WuauservRecordPath -Force
    }
}

function Restore-WindowsUpdateService {
    <#
    .SYNOPSIS
    Leaves the Windows Update service as the controller asked: its start mode, stopped unless it is to keep running.
    #>
    param([Parameter(Mandatory = $true)] $WuauservAfter)
    try {
        Set-WindowsUpdateService -State $WuauservAfter
    }
    catch {
        Add-CleanupError -ErrorRecord $_ -Call 'Restore wuauserv'
    }
}

function Restore-RecordedWindowsUpdateService {
    <#
    .SYNOPSIS
    Puts the Windows Update service back as it was before a run that could not restore it, if one did not.
    #>
    $script:BridgeCall = 'Restore wuauserv'
    $recorded = Read-JsonFile -Path $WuauservRecordPath
    if ($null -ne $recorded) {
        Set-WindowsUpdateService -State $recorded
    }
}

function New-UpdateSession {
    <#
    .SYNOPSIS
    A Windows Update Agent session in the collection's name, with English titles.
    #>
    $script:BridgeCall = 'Microsoft.Update.Session'
    $session = New-Object -ComObject Microsoft.Update.Session
    $session.ClientApplicationID = 'wuacache'
    $session.UserLocale = 1033
    $session
}

function Add-CatalogService {
    <#
    .SYNOPSIS
    Registers the root's wsusscn2.cab as a scan package service, for the time of one operation.

    .DESCRIPTION
    Returns the service manager ("manager") and the service (IUpdateService, "service"). The
    operation calls Remove-CatalogService in its finally, whatever happens.
    #>
    # IUpdateServiceManager::AddScanPackageService. Without usoNonVolatileService (0), the Update Agent
    # removes the registration when the IUpdateService it returns is released (UpdateServiceOption,
    # MicrosoftDocs/sdk-api sdk-api-src/content/wuapi/ne-wuapi-updateserviceoption.md): the operation
    # keeps that service until RemoveService.
    $script:BridgeCall = 'AddScanPackageService'
    $serviceManager = New-Object -ComObject Microsoft.Update.ServiceManager
    $catalogService = $serviceManager.AddScanPackageService('wuacache offline catalog', $CatalogPath, 0)
    [ordered]@{
        manager = $serviceManager
        service = $catalogService
    }
}

function Search-Catalog {
    <#
    .SYNOPSIS
    The search result (ISearchResult) of the criteria against the catalog's scan package service only.
    #>
    param(
        [Parameter(Mandatory = $true)] $Session,
        [Parameter(Mandatory = $true)] $Catalog,
        [Parameter(Mandatory = $true)] [string]$Criteria
    )
    # IUpdateSearcher::Search against that service only (ssOthers), as Microsoft's offline scan
    # sample does: "online" for a scan package service is reading the cab, never the network.
    Write-RunProgress -Step 'search' -Done 0 -Total 1
    $script:BridgeCall = 'IUpdateSearcher.Search'
    $searcher = $Session.CreateUpdateSearcher()
    $searcher.ServerSelection = 3
    $searcher.ServiceID = $Catalog.service.ServiceID
    $searcher.Search($Criteria)
}

function Remove-CatalogService {
    <#
    .SYNOPSIS
    Removes the catalog's scan package service with the service manager that added it, if it was added.
    #>
    [CmdletBinding()]
    param([AllowNull()] $Catalog)
    if ($null -eq $Catalog) {
        return
    }
    try {
        $Catalog.manager.RemoveService($Catalog.service.ServiceID)
    }
    catch {
        Add-CleanupError -ErrorRecord $_ -Call 'IUpdateServiceManager.RemoveService'
    }
}

function Get-DownloadUrl {
    <#
    .SYNOPSIS
    The DownloadUrl of each of an update's IUpdate.DownloadContents.
    #>
    param([Parameter(Mandatory = $true)] $Update)
    foreach ($content in $Update.DownloadContents) {
        $content.DownloadUrl
    }
}

function ConvertTo-UpdateRecord {
    <#
    .SYNOPSIS
    The properties of one IUpdate of a search result, with those of its bundled children.
    #>
    param([Parameter(Mandatory = $true)] $Update)
    [ordered]@{
        update_id = $Update.Identity.UpdateID
        revision_number = $Update.Identity.RevisionNumber
        title = $Update.Title
        kb_article_ids = @($Update.KBArticleIDs)
        msrc_severity = $Update.MsrcSeverity
        categories = @(foreach ($category in $Update.Categories) {
                [ordered]@{
                    id = $category.CategoryID
                    name = $category.Name
                    type = $category.Type
                }
            })
        last_deployment_change_time = ConvertTo-RoundTripUtc -Date $Update.LastDeploymentChangeTime
        is_installed = $Update.IsInstalled
        is_hidden = $Update.IsHidden
        is_downloaded = $Update.IsDownloaded
        is_mandatory = $Update.IsMandatory
        eula_accepted = $Update.EulaAccepted
        reboot_required = $Update.RebootRequired
        reboot_behavior = $Update.InstallationBehavior.RebootBehavior
        can_request_user_input = $Update.InstallationBehavior.CanRequestUserInput
        max_download_size = $Update.MaxDownloadSize
        superseded_update_ids = @($Update.SupersededUpdateIDs)
        download_urls = @(Get-DownloadUrl -Update $Update)
        bundled = @(foreach ($child in $Update.BundledUpdates) {
                [ordered]@{
                    update_id = $child.Identity.UpdateID
                    revision_number = $child.Identity.RevisionNumber
                    title = $child.Title
                    download_urls = @(Get-DownloadUrl -Update $child)
                }
            })
    }
}

function Read-UpdateHistory {
    <#
    .SYNOPSIS
    Every entry of the Windows Update history, most recent first.
    #>
    param([Parameter(Mandatory = $true)] $Session)
    # IUpdateSearcher::GetTotalHistoryCount, then IUpdateSearcher::QueryHistory.
    $script:BridgeCall = 'IUpdateSearcher.QueryHistory'
    $historySearcher = $Session.CreateUpdateSearcher()
    $count = $historySearcher.GetTotalHistoryCount()
    if ($count -gt 0) {
        foreach ($entry in $historySearcher.QueryHistory(0, $count)) {
            [ordered]@{
                operation = $entry.Operation
                result_code = $entry.ResultCode
                hresult = $entry.HResult
                date = ConvertTo-RoundTripUtc -Date $entry.Date
                update_id = $entry.UpdateIdentity.UpdateID
                revision_number = $entry.UpdateIdentity.RevisionNumber
                title = $entry.Title
            }
        }
    }
}

function Save-HttpFile {
    <#
    .SYNOPSIS
    Fetches a file over HTTP from the offset the controller gives, and keeps it only with the digest it must have.

    .DESCRIPTION
    The body goes to <Path>.part: appended to it when the server answers with the range asked
    for (206), in place of it when the server sends the whole file (200). The controller,
    which knows what the host holds, resumes a partial file with its length as Offset and
    starts over with 0. The complete part must have the digest given; it then replaces <Path>,
    and is deleted otherwise.

    .OUTPUTS
    The "status" (downloaded, or resumed when the server sent the range), the "size" of the
    file and the bytes "transferred" by this call.
    #>
    param(
        [Parameter(Mandatory = $true)] [string]$Url,
        [Parameter(Mandatory = $true)] [string]$Path,
        [Parameter(Mandatory = $true)] [long]$Offset,
        # The digest the file must have: Get-FileHash's algorithm (SHA1, SHA256) and the hex value.
        [Parameter(Mandatory = $true)] [string]$Algorithm,
        [Parameter(Mandatory = $true)] [string]$Hash
    )
    $partialPath = "$Path.part"
    $script:BridgeCall = "Save-HttpFile $(Split-Path -Path $Path -Leaf)"
    # WebRequest.Create would also take file:// URLs, which SYSTEM would open over SMB.
    if (([uri]$Url).Scheme -notin 'http', 'https') {
        throw [System.ArgumentException]::new("The URL '$Url' is not an http or https URL.")
    }
    # HttpWebRequest goes through the host's proxy setting, if any; an HTTP error status throws.
    $request = [System.Net.HttpWebRequest]::Create($Url)
    if ($Offset -gt 0) {
        $request.AddRange($Offset)
    }
    $response = $request.GetResponse()
    try {
        # A server that ignores the range answers 200 with the whole file.
        $resumed = [int]$response.StatusCode -eq 206
        $mode = 'Create'
        if ($resumed) {
            $mode = 'Append'
        }
        $file = [System.IO.File]::Open($partialPath, $mode, 'Write')
        try {
            $start = $file.Length
            $response.GetResponseStream().CopyTo($file)
            $transferred = $file.Length - $start
        }
        finally {
            $file.Dispose()
        }
    }
    finally {
        $response.Close()
    }

    if ((Get-FileHash -LiteralPath $partialPath -Algorithm $Algorithm).Hash -ne $Hash) {
        Remove-Item -LiteralPath $partialPath -Force
        throw [System.IO.InvalidDataException]::new("The file downloaded from $Url does not have the expected $Algorithm $Hash.")
    }
    Move-Item -LiteralPath $partialPath -Destination $Path -Force
    $status = 'downloaded'
    if ($resumed) {
        $status = 'resumed'
    }
    [ordered]@{
        status = $status
        size = (Get-Item -LiteralPath $Path).Length
        transferred = $transferred
    }
}

function Sync-Catalog {
    <#
    .SYNOPSIS
    The "ensure_cab" operation: the server's wsusscn2.cab in the root, with the SHA-256 the server publishes.
    #>
    param(
        [Parameter(Mandatory = $true)] [string]$Url,
        [Parameter(Mandatory = $true)] [string]$Sha256,
        [Parameter(Mandatory = $true)] [long]$Offset
    )
    # The catalog a run may be scanning with.
    Assert-HostLockFree
    # Splatted: tree-sitter-powershell, which the lab and the checks parse with, misreads a parameter name with digits.
    $fetch = @{ Url = $Url; Sha256 = $Sha256; Offset = $Offset }
    Save-Catalog @fetch
}

function Save-Catalog {
    <#
    .SYNOPSIS
    Fetches the server's wsusscn2.cab into the root, where it must have the SHA-256 the server publishes.
    #>
    param(
        [Parameter(Mandatory = $true)] [string]$Url,
        [Parameter(Mandatory = $true)] [string]$Sha256,
        [Parameter(Mandatory = $true)] [long]$Offset
    )
    Initialize-PrivateFolder
    Save-HttpFile -Url $Url -Path $CatalogPath -Offset $Offset -Algorithm SHA256 -Hash $Sha256
}

function Search-Update {
    <#
    .SYNOPSIS
    The "scan" operation (elevated): what the offline catalog finds for this host, its update history and whether a restart is pending.

    .DESCRIPTION
    With Cab (the url, sha256 and offset of ensure_cab), the server's catalog is fetched first,
    in the same run, as ensure_cab fetches it.
    #>
    param(
        [Parameter(Mandatory = $true)] [string]$Criteria,
        [Parameter(Mandatory = $true)] [Alias('wuauserv_after')] $WuauservAfter,
        $Cab = $null
    )
    $transfer = $null
    if ($null -ne $Cab) {
        $fetch = @{ Url = $Cab.url; Sha256 = $Cab.sha256; Offset = $Cab.offset }
        # The run holds the host: the catalog is its own to replace.
        $transfer = Save-Catalog @fetch
    }
    $catalog = $null
    try {
        Start-WindowsUpdateService
        $session = New-UpdateSession
        $catalog = Add-CatalogService
        $searchResult = Search-Catalog -Session $session -Catalog $catalog -Criteria $Criteria
        $script:BridgeCall = 'IUpdate'
        $updates = foreach ($update in $searchResult.Updates) {
            ConvertTo-UpdateRecord -Update $update
        }
        $history = Read-UpdateHistory -Session $session
        $rebootRequired = Get-SystemRebootRequired
        [ordered]@{
            cab = [ordered]@{
                path = $CatalogPath
                service_id = $catalog.service.ServiceID
                transfer = $transfer
            }
            result_code = $searchResult.ResultCode
            updates = @($updates)
            history = @($history)
            reboot_required = $rebootRequired
        }
    }
    finally {
        Remove-CatalogService -Catalog $catalog
        Restore-WindowsUpdateService -WuauservAfter $WuauservAfter
    }
}

function Save-Update {
    <#
    .SYNOPSIS
    The "download" operation (elevated): the files of each update found, fetched and handed to the Windows Update cache.

    .DESCRIPTION
    Each bundled child named in Files gets exactly its files, fetched into the staging
    folder and handed over with IUpdate2::CopyToCache. A failure ends the work on that
    update only; every update found is reported.
    #>
    param(
        [Parameter(Mandatory = $true)] [string]$Criteria,
        [Parameter(Mandatory = $true)] $Files,
        [Parameter(Mandatory = $true)] [Alias('wuauserv_after')] $WuauservAfter
    )
    Initialize-PrivateFolder
    $script:BridgeCall = 'New-Item staging folder'
    $null = New-Item -ItemType Directory -Path $StagingFolder -Force
    $catalog = $null
    try {
        Start-WindowsUpdateService
        $session = New-UpdateSession
        $catalog = Add-CatalogService
        $searchResult = Search-Catalog -Session $session -Catalog $catalog -Criteria $Criteria
        $filesTotal = @(foreach ($child in $Files.PSObject.Properties) { $child.Value }).Count
        $filesDone = 0
        $updates = foreach ($update in $searchResult.Updates) {
            $savedFiles = @()
            $updateError = $null
            try {
                foreach ($child in $update.BundledUpdates) {
                    $childFiles = $Files.PSObject.Properties[$child.Identity.UpdateID.ToLowerInvariant()]
                    if ($null -eq $childFiles) {
                        continue
                    }
                    $paths = New-Object -ComObject Microsoft.Update.StringColl
                    foreach ($file in @($childFiles.Value)) {
                        # The name becomes a path in the staging folder.
                        $script:BridgeCall = 'staged file name'
                        if ($file.name -cnotmatch '\A[A-Za-z0-9_-][A-Za-z0-9._-]*\z') {
                            throw [System.ArgumentException]::new("The file name '$($file.name)' is not a plain file name.")
                        }
                        $stagedPath = Join-Path -Path $StagingFolder -ChildPath $file.name
                        Write-RunProgress -Step 'download' -Done $filesDone -Total $filesTotal -Item $file.name
                        $saved = Save-HttpFile -Url $file.url -Path $stagedPath -Offset $file.offset -Algorithm SHA1 -Hash $file.sha1
                        $filesDone++
                        $saved.Insert(0, 'name', $file.name)
                        $savedFiles += $saved
                        $null = $paths.Add($stagedPath)
                    }
                    # IUpdate2::CopyToCache, on the child that owns the files.
                    $script:BridgeCall = 'IUpdate.CopyToCache'
                    $child.CopyToCache($paths)
                    $script:BridgeCall = 'Remove-Item staged files'
                    foreach ($stagedPath in $paths) {
                        Remove-Item -LiteralPath $stagedPath -Force
                    }
                }
            }
            catch {
                $updateError = ConvertTo-BridgeError -ErrorRecord $_ -Call $script:BridgeCall
            }
            $script:BridgeCall = 'IUpdate.IsDownloaded'
            $isDownloaded = $update.IsDownloaded
            [ordered]@{
                update_id = $update.Identity.UpdateID
                is_downloaded = $isDownloaded
                files = $savedFiles
                error = $updateError
            }
        }
        [ordered]@{
            updates = @($updates)
        }
    }
    finally {
        Remove-CatalogService -Catalog $catalog
        Restore-WindowsUpdateService -WuauservAfter $WuauservAfter
    }
}

function Install-Update {
    <#
    .SYNOPSIS
    The "install" operation (elevated): the updates found, installed together unless a restart must come first.
    #>
    param(
        [Parameter(Mandatory = $true)] [string]$Criteria,
        [Parameter(Mandatory = $true)] [Alias('wuauserv_after')] $WuauservAfter
    )
    $catalog = $null
    try {
        Start-WindowsUpdateService
        $session = New-UpdateSession
        $catalog = Add-CatalogService
        $searchResult = Search-Catalog -Session $session -Catalog $catalog -Criteria $Criteria
        $updates = New-Object -ComObject Microsoft.Update.UpdateColl
        $skipped = @()
        foreach ($update in $searchResult.Updates) {
            # Nobody can answer an update that asks for user input in a SYSTEM task; Microsoft's
            # sample leaves them out ("Searching, Downloading, and Installing Updates"). The
            # controller leaves them out of the criteria already, but the search may return another
            # revision than the scan did, so the installer must never be given one.
            $script:BridgeCall = 'IUpdate.InstallationBehavior'
            if ($update.InstallationBehavior.CanRequestUserInput) {
                $skipped += [ordered]@{
                    update_id = $update.Identity.UpdateID
                    title = $update.Title
                }
                continue
            }
            if (-not $update.EulaAccepted) {
                $script:BridgeCall = 'IUpdate.AcceptEula'
                $update.AcceptEula()
            }
            $null = $updates.Add($update)
        }
        $script:BridgeCall = 'CreateUpdateInstaller'
        $installer = $session.CreateUpdateInstaller()
        # Nobody can answer a prompt for source media in a SYSTEM task.
        $installer.AllowSourcePrompts = $false
        $script:BridgeCall = 'IUpdateInstaller.RebootRequiredBeforeInstallation'
        $rebootFirst = $installer.RebootRequiredBeforeInstallation
        # IUpdateInstaller::Install refuses an empty collection (WU_E_NO_UPDATE).
        if ($rebootFirst -or $updates.Count -eq 0) {
            return [ordered]@{
                reboot_required_before_installation = $rebootFirst
                result_code = $null
                hresult = $null
                reboot_required = $null
                updates = @()
                skipped = @($skipped)
            }
        }
        # IUpdateInstaller::Install; GetUpdateResult(i) follows the installer's order.
        Write-RunProgress -Step 'install' -Done 0 -Total $updates.Count
        $script:BridgeCall = 'IUpdateInstaller.Install'
        $installer.Updates = $updates
        $installation = $installer.Install()
        $results = for ($index = 0; $index -lt $updates.Count; $index++) {
            $update = $updates.Item($index)
            $updateResult = $installation.GetUpdateResult($index)
            [ordered]@{
                update_id = $update.Identity.UpdateID
                title = $update.Title
                result_code = $updateResult.ResultCode
                hresult = $updateResult.HResult
                reboot_required = $updateResult.RebootRequired
            }
        }
        [ordered]@{
            reboot_required_before_installation = $false
            result_code = $installation.ResultCode
            hresult = $installation.HResult
            reboot_required = $installation.RebootRequired
            updates = @($results)
            skipped = @($skipped)
        }
    }
    finally {
        Remove-CatalogService -Catalog $catalog
        Restore-WindowsUpdateService -WuauservAfter $WuauservAfter
    }
}

function Uninstall-Update {
    <#
    .SYNOPSIS
    The "uninstall" operation (elevated): the update of a KB removed by the Windows Update Standalone Installer, or a package by DISM.

    .DESCRIPTION
    wusa.exe /uninstall does not work on a combined package, the cumulative update that carries
    the servicing stack update: Microsoft's KB articles have the cumulative update's own package
    removed with DISM instead. The controller finds that package (Get-ServicingPackage) and names
    it; without a package name, wusa.exe removes the KB's update.
    #>
    param(
        [Parameter(Mandatory = $true)] [AllowEmptyString()] [string]$Kb,
        # A cumulative update's package, for DISM; none for wusa.exe.
        [Parameter()] [AllowNull()] [Alias('package_name')] [string]$PackageName,
        [Parameter(Mandatory = $true)] [Alias('wuauserv_after')] $WuauservAfter
    )
    # The number goes on wusa's command line.
    if ($Kb -cnotmatch '\A[0-9]{1,10}\z') {
        throw [System.ArgumentException]::new("The KB '$Kb' must be 1 to 10 digits.")
    }
    # wusa.exe works through the Windows Update service.
    try {
        Start-WindowsUpdateService
        if ($PackageName) {
            $script:BridgeCall = 'Remove-WindowsPackage'
            $image = Remove-WindowsPackage -Online -PackageName $PackageName -NoRestart
            return [ordered]@{
                method = 'dism'
                exit_code = $null
                restart_needed = $image.RestartNeeded
            }
        }
        $script:BridgeCall = 'wusa.exe'
        $exitCode = Invoke-Process -FilePath 'wusa.exe' -ArgumentList '/uninstall', "/kb:$Kb", '/quiet', '/norestart'
        [ordered]@{
            method = 'wusa'
            exit_code = $exitCode
            restart_needed = $null
        }
    }
    finally {
        Restore-WindowsUpdateService -WuauservAfter $WuauservAfter
    }
}

function Get-ServicingPackage {
    <#
    .SYNOPSIS
    The "servicing_packages" operation: the servicing packages of the running Windows whose names are like a pattern, in detail.

    .DESCRIPTION
    A cumulative update's package (Package_for_RollupFix~...) does not carry its KB in its name:
    its description and support information do. Only the packages the controller names by
    pattern are read in detail, each with a call of its own.
    #>
    param([Parameter(Mandatory = $true)] [Alias('name_like')] [string]$NameLike)
    $script:BridgeCall = 'Get-WindowsPackage'
    $packages = foreach ($package in @(Get-WindowsPackage -Online)) {
        if ($package.PackageName -like $NameLike) {
            $details = Get-WindowsPackage -Online -PackageName $package.PackageName
            [ordered]@{
                name = $details.PackageName
                state = [string]$details.PackageState
                description = $details.Description
                support_information = $details.SupportInformation
            }
        }
    }
    [ordered]@{
        packages = @($packages)
    }
}

function Get-ServicingLog {
    <#
    .SYNOPSIS
    The "servicing_log" operation: the end of the servicing log, CBS.log, from MaxBytes before its end.

    .DESCRIPTION
    The controller reads it after an install failed and picks the lines it reports. TrustedInstaller
    keeps the log open for writing while it runs: only a reader that lets others write opens it
    (FileShare.ReadWrite, dotnet/dotnet-api-docs xml/System.IO/FileShare.xml). The tail is copied
    into the root and read from there; it may begin inside a line, "offset" says where.
    #>
    param([Parameter(Mandatory = $true)] [Alias('max_bytes')] [long]$MaxBytes)
    $log = [ordered]@{
        path = Join-Path -Path $env:SystemRoot -ChildPath 'Logs\CBS\CBS.log'
        size = $null
        offset = $null
        text = $null
    }
    if (-not (Test-Path -LiteralPath $log.path -PathType Leaf)) {
        return $log
    }
    Initialize-PrivateFolder
    $script:BridgeCall = 'Read CBS.log'
    $source = [System.IO.File]::Open($log.path, 'Open', 'Read', 'ReadWrite')
    try {
        $log.size = $source.Length
        $log.offset = $log.size - $MaxBytes
        if ($log.offset -lt 0) {
            $log.offset = 0
        }
        $source.Position = $log.offset
        $tail = [System.IO.File]::Open($ServicingLogTailPath, 'Create', 'Write')
        try {
            $source.CopyTo($tail)
        }
        finally {
            $tail.Dispose()
        }
    }
    finally {
        $source.Dispose()
    }
    try {
        # Servicing writes its log in the system's ANSI code page (plain ASCII in the logs that
        # Microsoft's customers publish; the encoding is not documented).
        $log.text = Get-Content -LiteralPath $ServicingLogTailPath -Raw -Encoding Default
    }
    finally {
        Remove-Item -LiteralPath $ServicingLogTailPath -Force
    }
    $log
}

function Get-UpdateHistory {
    <#
    .SYNOPSIS
    The "history" operation (elevated): every entry of the Windows Update history, most recent first.
    #>
    param([Parameter(Mandatory = $true)] [Alias('wuauserv_after')] $WuauservAfter)
    try {
        Start-WindowsUpdateService
        $session = New-UpdateSession
        [ordered]@{
            history = @(Read-UpdateHistory -Session $session)
        }
    }
    finally {
        Restore-WindowsUpdateService -WuauservAfter $WuauservAfter
    }
}

function Remove-Package {
    <#
    .SYNOPSIS
    Deletes a package and its partial download, if they exist: a package is used once.
    #>
    param([Parameter(Mandatory = $true)] [string]$Path)
    try {
        foreach ($file in $Path, "$Path.part") {
            if (Test-Path -LiteralPath $file) {
                Remove-Item -LiteralPath $file -Force
            }
        }
    }
    catch {
        Add-CleanupError -ErrorRecord $_ -Call 'Remove-Item package'
    }
}

function Install-Package {
    <#
    .SYNOPSIS
    The "install_package" operation (elevated): a package of the server, fetched and installed by wusa.exe or DISM.

    .DESCRIPTION
    The package is fetched into the packages folder (its SHA-256 checked), installed with
    wusa.exe (.msu) or dism.exe (.cab), and deleted whatever happened: the next install
    fetches it again. The tool's exit code is the answer; the controller interprets it.
    DISM is not run for a cabinet whose package Get-WindowsPackage finds in one of the
    states the controller names: DISM would apply it again and say nothing of it.
    #>
    param(
        [Parameter(Mandatory = $true)] [string]$Url,
        [Parameter(Mandatory = $true)] [AllowEmptyString()] [string]$Name,
        [Parameter(Mandatory = $true)] [string]$Sha256,
        [Parameter(Mandatory = $true)] [AllowEmptyString()] [string]$Kind,
        [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [Alias('installed_states')] [string[]]$InstalledStates,
        [Parameter(Mandatory = $true)] [Alias('wuauserv_after')] $WuauservAfter
    )
    # The name becomes a path under the root.
    if ($Name -cnotmatch '\A[A-Za-z0-9._-]+\.(msu|cab)\z') {
        throw [System.ArgumentException]::new("The package name '$Name' must be a plain .msu or .cab file name.")
    }
    if ($Kind -cne 'msu' -and $Kind -cne 'cab') {
        throw [System.ArgumentException]::new("The package kind '$Kind' must be msu or cab.")
    }
    Initialize-PrivateFolder
    $script:BridgeCall = 'New-Item packages folder'
    $null = New-Item -ItemType Directory -Path $PackagesFolder -Force
    $packagePath = Join-Path -Path $PackagesFolder -ChildPath $Name
    $exitCode = $null
    $packageState = $null
    # wusa.exe installs through the Windows Update service.
    try {
        Start-WindowsUpdateService
        # The package and its part are deleted after every install: it never resumes.
        $download = Save-HttpFile -Url $Url -Path $packagePath -Offset 0 -Algorithm SHA256 -Hash $Sha256
        # Start-Process joins the arguments with spaces without quoting them.
        if ($Kind -ceq 'msu') {
            $script:BridgeCall = 'wusa.exe'
            $exitCode = Invoke-Process -FilePath 'wusa.exe' -ArgumentList "`"$packagePath`"", '/quiet', '/norestart'
        }
        else {
            $script:BridgeCall = 'Get-WindowsPackage'
            $packageState = [string](Get-WindowsPackage -Online -PackagePath $packagePath).PackageState
            if ($InstalledStates -cnotcontains $packageState) {
                $script:BridgeCall = 'dism.exe'
                $exitCode = Invoke-Process -FilePath 'dism.exe' -ArgumentList '/Online', '/Add-Package', "`"/PackagePath:$packagePath`"", '/Quiet', '/NoRestart'
            }
        }
        [ordered]@{
            exit_code = $exitCode
            package_state = $packageState
            download = $download
        }
    }
    finally {
        Remove-Package -Path $packagePath
        Restore-WindowsUpdateService -WuauservAfter $WuauservAfter
    }
}

function Start-OsUpgrade {
    <#
    .SYNOPSIS
    The "os_upgrade" operation (elevated): the down-level phase of Windows Setup's in-place upgrade.

    .DESCRIPTION
    Runs setup.exe with the controller's switches and /copylogs to the root's logs folder,
    where Setup copies its logs when it fails. The exit code is the answer; the controller
    interprets it and restarts the host.
    #>
    param(
        [Parameter(Mandatory = $true)] [Alias('setup_path')] [AllowEmptyString()] [string]$SetupPath,
        [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [string[]]$Arguments
    )
    $script:BridgeCall = 'Test-Path setup_path'
    if (-not (Test-Path -LiteralPath $SetupPath -PathType Leaf)) {
        throw [System.IO.FileNotFoundException]::new("Could not find file '$SetupPath'.", $SetupPath)
    }
    Initialize-PrivateFolder
    $script:BridgeCall = 'New-Item logs folder'
    $null = New-Item -ItemType Directory -Path $OsUpgradeLogsFolder -Force
    # Start-Process joins the arguments with spaces without quoting them.
    $script:BridgeCall = 'setup.exe'
    $exitCode = Invoke-Process -FilePath $SetupPath -ArgumentList (@($Arguments) + '/copylogs', "`"$OsUpgradeLogsFolder`"")
    [ordered]@{
        exit_code = $exitCode
        logs = $OsUpgradeLogsFolder
    }
}

function Request-Restart {
    <#
    .SYNOPSIS
    The "restart" operation: shutdown.exe restarts the host after a delay, or aborts a restart still in its delay.

    .DESCRIPTION
    The exit code is the answer; the controller interprets it (a restart scheduled already,
    none to abort). It must travel in the response: over WinRM, powershell.exe's own exit code
    is not the program's.
    #>
    [CmdletBinding(DefaultParameterSetName = 'Restart')]
    param(
        [Parameter(Mandatory = $true, ParameterSetName = 'Restart')] [int]$Delay,
        [Parameter(Mandatory = $true, ParameterSetName = 'Restart')] [string]$Comment,
        [Parameter(Mandatory = $true, ParameterSetName = 'Abort')] [switch]$Abort
    )
    if ($Abort) {
        $arguments = @('/a')
    }
    else {
        # Start-Process joins the arguments with spaces without quoting them: a double quote
        # in the comment would end it and pass the rest to shutdown.exe as switches.
        if ($Comment.Contains('"')) {
            throw [System.ArgumentException]::new('The restart comment must not hold a double quote.')
        }
        $arguments = @('/r', '/t', [string]$Delay, '/c', "`"$Comment`"")
    }
    $script:BridgeCall = 'shutdown.exe'
    $exitCode = Invoke-Process -FilePath 'shutdown.exe' -ArgumentList $arguments
    [ordered]@{
        exit_code = $exitCode
    }
}

function Clear-Staging {
    <#
    .SYNOPSIS
    The "clean_staging" operation: no download, partial or whole, left in the staging and packages folders.

    .OUTPUTS
    The number of files removed and their bytes; the folders themselves stay.
    #>
    # The files a run may be handing over.
    Assert-HostLockFree
    $script:BridgeCall = 'Remove-Item staging'
    $removedFiles = 0
    $removedBytes = 0
    foreach ($folder in $StagingFolder, $PackagesFolder) {
        if (-not (Test-Path -LiteralPath $folder -PathType Container)) {
            continue
        }
        foreach ($file in @(Get-ChildItem -LiteralPath $folder -Recurse -File -Force)) {
            $removedFiles++
            $removedBytes += $file.Length
        }
        foreach ($item in @(Get-ChildItem -LiteralPath $folder -Force)) {
            Remove-Item -LiteralPath $item.FullName -Recurse -Force
        }
    }
    [ordered]@{
        removed_files = $removedFiles
        removed_bytes = $removedBytes
    }
}

function Save-KeptBridge {
    <#
    .SYNOPSIS
    Keeps the bridge the controller sent whole in the root, under the SHA-256 it gave, in place of any other.

    .DESCRIPTION
    The bootstrap runs a kept bridge only when its text has the digest asked for. Keeping it
    saves sending it again: where that fails (a logon that may not write the root), the
    controller sends it whole again, and nothing else is lost.
    #>
    param([Parameter(Mandatory = $true)] [string]$Digest)
    try {
        Initialize-PrivateFolder
        if (-not (Test-Path -LiteralPath $KeptBridgeFolder -PathType Container)) {
            $null = New-Item -ItemType Directory -Path $KeptBridgeFolder
        }
        Set-FileText -Path (Join-Path -Path $KeptBridgeFolder -ChildPath "$Digest.ps1") -Text $BridgeText
        foreach ($kept in @(Get-ChildItem -LiteralPath $KeptBridgeFolder -File -Force)) {
            if ($kept.Name -ne "$Digest.ps1") {
                Remove-Item -LiteralPath $kept.FullName -Force
            }
        }
    }
    catch {
        $null = $_
    }
}

# Each operation is the function of that name, called with the request's params as parameters.
$operations = @{
    info = 'Get-HostInfo'
    task_start = 'Start-ElevatedRun'
    task_poll = 'Get-ElevatedRun'
    task_collect = 'Complete-ElevatedRun'
    reboot_required = 'Get-RebootRequired'
    ensure_cab = 'Sync-Catalog'
    scan = 'Search-Update'
    download = 'Save-Update'
    install = 'Install-Update'
    uninstall = 'Uninstall-Update'
    servicing_packages = 'Get-ServicingPackage'
    servicing_log = 'Get-ServicingLog'
    history = 'Get-UpdateHistory'
    install_package = 'Install-Package'
    os_upgrade = 'Start-OsUpgrade'
    restart = 'Request-Restart'
    clean_staging = 'Clear-Staging'
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
    $result = & $operations[$response.operation] @parameters
    # The operation succeeded: a clean-up that failed is the error.
    if ($null -eq $script:CleanupError) {
        $response.result = $result
        $exitCode = 0
    }
    else {
        $response.error = $script:CleanupError
        $exitCode = 1
    }
}
catch {
    $response.error = ConvertTo-BridgeError -ErrorRecord $_ -Call $script:BridgeCall
    $exitCode = 1
}

if ($KeepAs) {
    Save-KeptBridge -Digest $KeepAs
}

$json = ConvertTo-AsciiJson -InputObject $response
if ($ResponsePath) {
    # A task has no standard output to read: the response goes to a file, renamed into place once complete.
    Set-FileText -Path $ResponsePath -Text $json
}
else {
    $json
}
exit $exitCode
