"""The PowerShell texts of Windows patching (windows_apply, windows_task, windows_updates) and
the constants they embed. Placeholders (`__NAME__`, `__WANTED__`, ...) are replaced only with
single-quoted PowerShell literals (orchestrator.quoting.powershell_quote) or fixed values."""

from __future__ import annotations

REBOOT_KEY = ("HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update"
              "\\RebootRequired")
TASK_DIR = "orchestrator"  # under $env:ProgramData: SYSTEM and Administrators only
TASK_DIR_SDDL = "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
TRUSTED_SIDS = ("S-1-5-18", "S-1-5-32-544")  # SYSTEM, BUILTIN\Administrators
# FileSystemRights that let a holder change a file: WriteData 0x2, AppendData 0x4,
# WriteExtendedAttributes 0x10, DeleteSubdirectoriesAndFiles 0x40, WriteAttributes 0x100,
# Delete 0x10000, ChangePermissions 0x40000, TakeOwnership 0x80000, GenericAll 0x10000000,
# GenericWrite 0x40000000 (0x500D0156, written in decimal for PowerShell 5.1's parser)
WRITE_RIGHTS = 0x500D0156

PROBE_PS = """\
$ErrorActionPreference = 'Stop'
$ic = [Globalization.CultureInfo]::InvariantCulture
$os = Get-CimInstance -ClassName Win32_OperatingSystem
$disk = @(Get-CimInstance -ClassName Win32_LogicalDisk |
  Where-Object { $_.DeviceID -eq $env:SystemDrive })
[pscustomobject]@{
  SystemDrive = [string]$env:SystemDrive
  Size = @($disk | ForEach-Object { $_.Size })
  FreeSpace = @($disk | ForEach-Object { $_.FreeSpace })
  LastBoot = $os.LastBootUpTime.ToString('o', $ic)
  HotFixes = @(Get-HotFix | ForEach-Object { [string]$_.HotFixID })
  RebootRequired = Test-Path -LiteralPath __REBOOT_KEY__
} | ConvertTo-Json -Compress"""

BOOT_PS = """\
$ic = [Globalization.CultureInfo]::InvariantCulture
(Get-CimInstance -ClassName Win32_OperatingSystem).LastBootUpTime.ToString('o', $ic)"""

# JSON lines: one {"Stage": "offered", ...} per selected update, then (installing) one
# {"Stage": "result", ...} per update, in the same order, and {"Stage": "installed", ...}.
# Searching (--check) runs in the WinRM session; installing runs inside TASK_PS.
UPDATE_PS = """\
$ErrorActionPreference = 'Stop'
$wanted = @(__WANTED__)
$install = __INSTALL__
$s = New-Object -ComObject Microsoft.Update.Session
$s.ClientApplicationID = 'orchestrator'
$q = $s.CreateUpdateSearcher()
$r = $q.Search('IsInstalled=0 and IsHidden=0')
if ($r.ResultCode -ne 2) { throw "Windows Update search result code $($r.ResultCode)" }
$coll = New-Object -ComObject Microsoft.Update.UpdateColl
foreach ($u in $r.Updates) {
  $kbs = @($u.KBArticleIDs | ForEach-Object { 'KB' + [string]$_ })
  $hit = @($kbs | Where-Object { $wanted -contains $_ })
  if ($hit.Count -gt 0) {
    if ($install -and -not $u.EulaAccepted) { $u.AcceptEula() }
    $coll.Add($u) | Out-Null
    [pscustomobject]@{ Stage = 'offered'; KB = [string]$hit[0]; Title = [string]$u.Title;
      RebootBehavior = [int]$u.InstallationBehavior.RebootBehavior } | ConvertTo-Json -Compress
  }
}
if ($install -and $coll.Count -gt 0) {
  $d = $s.CreateUpdateDownloader()
  $d.Updates = $coll
  $dr = $d.Download()
  $i = $s.CreateUpdateInstaller()
  $i.Updates = $coll
  $ir = $i.Install()
  $n = 0
  foreach ($u in $coll) {
    $dres = $dr.GetUpdateResult($n)
    $ires = $ir.GetUpdateResult($n)
    [pscustomobject]@{ Stage = 'result'; Index = $n; Download = [int]$dres.ResultCode;
      DownloadHResult = [int]$dres.HResult; ResultCode = [int]$ires.ResultCode;
      HResult = [int]$ires.HResult; RebootRequired = [bool]$ires.RebootRequired
    } | ConvertTo-Json -Compress
    $n = $n + 1
  }
  [pscustomobject]@{ Stage = 'installed'; ResultCode = [int]$ir.ResultCode;
    RebootRequired = [bool]$ir.RebootRequired } | ConvertTo-Json -Compress
}"""

# The install task's own script (run by Task Scheduler as SYSTEM, powershell -EncodedCommand):
# UPDATE_PS's lines, or {"Stage": "error"} if the agent throws, then {"Stage": "end"}, written
# to a temporary file renamed to the result file once complete (so that a result file that
# exists is whole). The folder is TASK_DIR's, locked by START_PS.
TASK_PS = """\
$ErrorActionPreference = 'Stop'
$result = $env:ProgramData + '\\__DIR__\\' + __NAME__ + '.json'
$lines = & {
try {
__UPDATE__
} catch {
  [pscustomobject]@{ Stage = 'error'; Message = [string]$_.Exception.Message } |
    ConvertTo-Json -Compress
}
}
@($lines) + @([pscustomobject]@{ Stage = 'end' } | ConvertTo-Json -Compress) |
  Set-Content -LiteralPath ($result + '.tmp') -Encoding UTF8
Move-Item -LiteralPath ($result + '.tmp') -Destination $result -Force"""

# Make $env:ProgramData\orchestrator ours (refusing a folder someone else owns, or a link),
# lock it to SYSTEM and Administrators, refuse to start while another orchestrator install
# task runs on the host, clear leftovers, register the task and start it.
START_PS = """\
$ErrorActionPreference = 'Stop'
$name = __NAME__
$dir = $env:ProgramData + '\\__DIR__'
$result = $dir + '\\' + $name + '.json'
$trusted = @(__TRUSTED__)
$busy = @(Get-ScheduledTask -TaskName 'orchestrator-*' -ErrorAction SilentlyContinue |
  Where-Object { [string]$_.State -eq 'Running' } | ForEach-Object { [string]$_.TaskName })
if ($busy.Count -gt 0) { throw "another orchestrator install task is running on this host: $busy" }
if (Test-Path -LiteralPath $dir) {
  $item = Get-Item -LiteralPath $dir -Force
  if ($item.Attributes -band [IO.FileAttributes]::ReparsePoint) {
    throw "$dir is a link (reparse point): refusing it; remove it"
  }
  if (-not ($item.Attributes -band [IO.FileAttributes]::Directory)) {
    throw "$dir is not a folder: refusing it; remove it"
  }
  $owner = (Get-Acl -LiteralPath $dir).GetOwner([Security.Principal.SecurityIdentifier]).Value
  if ($trusted -notcontains $owner) {
    throw "$dir is owned by $owner, not by SYSTEM or Administrators: refusing it; remove it"
  }
} else {
  New-Item -ItemType Directory -Path $dir | Out-Null
}
$acl = Get-Acl -LiteralPath $dir
$acl.SetSecurityDescriptorSddlForm(__SDDL__)
Set-Acl -LiteralPath $dir -AclObject $acl
Remove-Item -LiteralPath $result, ($result + '.tmp') -Force -ErrorAction SilentlyContinue
$action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument __ARGS__
$principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
$settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
Register-ScheduledTask -TaskName $name -Action $action -Principal $principal `
  -Settings $settings | Out-Null
Start-ScheduledTask -TaskName $name"""

POLL_PS = """\
$name = __NAME__
$t = Get-ScheduledTask -TaskName $name -ErrorAction SilentlyContinue
$last = $null
if ($t) { $last = [int64](Get-ScheduledTaskInfo -TaskName $name).LastTaskResult }
$done = Test-Path -LiteralPath ($env:ProgramData + '\\__DIR__\\' + $name + '.json')
[pscustomobject]@{ State = [string]$t.State; LastTaskResult = $last; Done = [bool]$done } |
  ConvertTo-Json -Compress"""

# Read the task's result if asked (refusing a file that is a link, owned by anyone but SYSTEM
# or Administrators, or that anyone else may change); in every case stop the task if it still
# runs (a task unregistered while it runs goes on running), unregister it and remove the
# files; then say what is left.
FINISH_PS = """\
$ErrorActionPreference = 'Stop'
$name = __NAME__
$read = __READ__
$result = $env:ProgramData + '\\__DIR__\\' + $name + '.json'
$trusted = @(__TRUSTED__)
$text = $null
$refused = ''
$last = $null
try {
  if ($read -and (Test-Path -LiteralPath $result)) {
    $item = Get-Item -LiteralPath $result -Force
    $acl = Get-Acl -LiteralPath $result
    $owner = $acl.GetOwner([Security.Principal.SecurityIdentifier]).Value
    $writers = @($acl.GetAccessRules($true, $true, [Security.Principal.SecurityIdentifier]) |
      Where-Object { [string]$_.AccessControlType -eq 'Allow' } |
      Where-Object { $trusted -notcontains $_.IdentityReference.Value } |
      Where-Object { ($_.FileSystemRights -band __WRITE__) -ne 0 } |
      ForEach-Object { [string]$_.IdentityReference.Value })
    if ($item.Attributes -band [IO.FileAttributes]::ReparsePoint) {
      $refused = 'it is a link (reparse point)'
    }
    elseif ($trusted -notcontains $owner) { $refused = "it is owned by $owner" }
    elseif ($writers.Count -gt 0) { $refused = "it may be changed by $writers" }
    else { $text = Get-Content -LiteralPath $result -Raw }
  }
} finally {
  $t = Get-ScheduledTask -TaskName $name -ErrorAction SilentlyContinue
  if ($t) {
    if ([string]$t.State -eq 'Running') { Stop-ScheduledTask -TaskName $name }
    $last = [int64](Get-ScheduledTaskInfo -TaskName $name).LastTaskResult
    Unregister-ScheduledTask -TaskName $name -Confirm:$false
  }
  Remove-Item -LiteralPath $result, ($result + '.tmp') -Force -ErrorAction SilentlyContinue
}
$left = @()
if (Get-ScheduledTask -TaskName $name -ErrorAction SilentlyContinue) { $left = $left + @('task') }
if (Test-Path -LiteralPath $result) { $left = $left + @('result file') }
[pscustomobject]@{ Text = $text; Refused = $refused; LastTaskResult = $last; Left = $left
} | ConvertTo-Json -Compress"""

SERVICES_PS = """\
@(Get-Service -Name __NAMES__ -ErrorAction SilentlyContinue | ForEach-Object {
  [pscustomobject]@{ Name = [string]$_.Name; Status = [string]$_.Status }
}) | ConvertTo-Json -Compress"""
