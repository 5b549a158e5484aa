"""Boot-time half of an application-files update (docs/fota.md, files sink: rp2, CircuitPython): swap the
staged files in, and put the old ones back if the new code has not confirmed by the next boot.

Call `boot()` first thing in boot.py (so main.py / code.py, read after it, is already the new one):

    from lwm2m_mpy.fota import guard
    guard.boot()

(CircuitPython: after `storage.remount("/", readonly=False)`, which the files sink needs anyway.)
Under <root>/.fota/: new/ (the staged files), old/ (the files they replaced), head (the package header,
for a resume) and the markers: pending (staged and verified: swap at the next boot), trial (the files
swapped in, one a line: "=path" replaced a file, "+path" added one; the new code has not confirmed yet),
rolled (the old files came back). Only `os` is used (MicroPython, CircuitPython and CPython have these
calls), and boot() costs one failed listdir when there is no update.
"""
import os

_timer = None  # the deadline of a trial (boot's `deadline`), cancelled by confirm()


def _base(root):
    return root.rstrip("/") + "/.fota"


def _exists(path):
    try:
        os.stat(path)
    except OSError:
        return False
    return True


def remove(path):
    try:
        os.remove(path)
    except OSError:
        pass  # not there: what we wanted


def makedirs(path):
    """The folders above file `path`."""
    at = path.find("/", 1)
    while at > 0:
        try:
            os.mkdir(path[:at])
        except OSError:
            pass  # exists (MicroPython has no exist_ok); a real failure shows at the file's open
        at = path.find("/", at + 1)


def rmtree(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        p = path + "/" + name
        if os.stat(p)[0] & 0x4000:  # S_IFDIR
            rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)


def files(folder, rel=""):
    """The files under folder, as paths relative to it, sorted."""
    out = []
    try:
        names = sorted(os.listdir(folder + rel))
    except OSError:
        return out  # no such folder: nothing staged
    for name in names:
        p = rel + "/" + name
        if os.stat(folder + p)[0] & 0x4000:
            out += files(folder, p)
        else:
            out.append(p[1:])
    return out


def _move(src, dst):
    makedirs(dst)
    remove(dst)  # rename over an existing file fails on FAT
    os.rename(src, dst)


def boot(root="/", deadline=600):
    """Finish what the last update left: returns None (nothing), "new" (the staged files are in: a trial;
    with `deadline` seconds and a soft machine.Timer (rp2), the board resets if the new code has not
    confirmed by then) or "rolled back" (the trial's code never confirmed: the old files are back)."""
    base = _base(root)
    try:
        names = os.listdir(base)
    except OSError:
        return None
    if "pending" in names:
        _swap(root.rstrip("/"), base, "trial" in names)
        _arm(base, deadline)
        return "new"
    if "trial" in names:
        _back(root.rstrip("/"), base)
        return "rolled back"
    return None


def _swap(top, base, listed):
    new = base + "/new"
    trial = base + "/trial"
    if not listed:
        # The list is written before anything moves, so a reset in the middle of the moves repeats them
        # from it (a moved file is no longer in new/) and a later rollback knows what to undo
        with open(trial + ".tmp", "w") as f:
            for rel in files(new):
                f.write("%s%s\n" % ("=" if _exists(top + "/" + rel) else "+", rel))
        os.rename(trial + ".tmp", trial)
    with open(trial) as f:
        for line in f:
            rel = line[1:].rstrip("\n")
            src = new + "/" + rel
            if not _exists(src):
                continue  # moved in before a reset
            dst = top + "/" + rel
            if line[0] == "=" and _exists(dst):
                _move(dst, base + "/old/" + rel)
            _move(src, dst)
    remove(base + "/pending")
    rmtree(new)


def _back(top, base):
    with open(base + "/trial") as f:
        for line in f:
            rel = line[1:].rstrip("\n")
            dst = top + "/" + rel
            if line[0] == "+":
                remove(dst)
                at = rel.rfind("/")
                while at > 0:  # folders the update made, now empty (rmdir refuses a folder with files)
                    try:
                        os.rmdir(top + "/" + rel[:at])
                    except OSError:
                        break
                    at = rel.rfind("/", 0, at)
            elif _exists(base + "/old/" + rel):
                _move(base + "/old/" + rel, dst)
    # Recorded before the trial marker goes: a reset in between repeats this (each step is idempotent)
    with open(base + "/rolled", "w") as f:
        f.write("rolled back")
    remove(base + "/trial")
    rmtree(base + "/old")
    rmtree(base + "/new")


def _arm(base, deadline):
    global _timer
    if not deadline:
        return
    try:
        from machine import Timer, reset

        # The callback looks at the marker rather than at _timer: a confirm() through a fresh import of
        # this module (main.py may drop it from sys.modules) cannot reach this Timer, but it removes the file
        _timer = Timer(-1, mode=Timer.ONE_SHOT, period=deadline * 1000,
                       callback=lambda t: _exists(base + "/trial") and reset())
    except (ImportError, ValueError, TypeError):
        pass  # no soft timer (unix, CircuitPython; esp32 has hardware timers only): the next reset decides


def confirm(root="/"):
    """The running files stay: forget the old ones and every record (trial, rolled back, an update
    staged but never swapped in)."""
    global _timer
    if _timer:
        _timer.deinit()
        _timer = None
    base = _base(root)
    remove(base + "/trial")  # first: from here on a reset keeps the new files
    remove(base + "/rolled")
    if _exists(base + "/pending"):
        remove(base + "/pending")
        rmtree(base + "/new")
    rmtree(base + "/old")


def pending(root="/"):
    """What the last update left: None, "new" (a trial, not confirmed) or "rolled back" (its code did not
    confirm; also an update staged but never swapped in: boot() is not being called)."""
    try:
        names = os.listdir(_base(root))
    except OSError:
        return None
    if "rolled" in names or "pending" in names:
        return "rolled back"
    if "trial" in names:
        return "new"
    return None
