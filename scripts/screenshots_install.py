"""PNG screenshots of the install dialog in the real QGIS desktop: as it opens over QGIS, before, during and after
an install, after a failed one, and the message bar after "Not now", for reviewers.

    python3 scripts/screenshots_install.py [OUT_DIR] [--torch-build BUILD] [--small | --before-only]

Everything happens in a throw-away profile and environment folder (deleted afterwards); the user's environment is
never touched. By default the real requirement set is installed (minutes and gigabytes); ``--small`` installs
only ``six`` (seconds); ``--before-only`` takes the first three pictures (the real plan, nothing installed) and
stops. ``--torch-build`` picks the build to install after the "before" picture, which shows the
recommended one (``default`` where PyTorch's own index cannot be reached). The failure is a reinstall with a
package that cannot be imported. Needs QGIS, xvfb-run and xauth; OUT_DIR defaults to docs/screenshots.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from qgis_desktop import REPO, desktop_missing, run_desktop

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from testsupport import requirement_sets as sets

BODY = """
from qgis.PyQt.QtWidgets import QApplication, QPushButton

OUT = {out!r}
BUILD = {build!r}
BROKEN = {broken!r}
BEFORE_ONLY = {before_only!r}


def save(widget, name):
    QApplication.processEvents()
    (widget.grab() if widget is not None else QApplication.primaryScreen().grabWindow(0)).save(f"{{OUT}}/{{name}}")
    RESULT.setdefault("saved", []).append(name)


def body():
    plugin = plugins["iamap"]
    ready = lambda: plugin.install_dialog is not None and plugin.install_dialog.install_button.isEnabled()
    if not wait_until(ready, 120):
        raise RuntimeError("the install dialog did not open")
    dialog = plugin.install_dialog
    wait_until(lambda: False, 1)
    save(None, "install-0-over-qgis.png")
    save(dialog, "install-1-before.png")
    dialog.not_now_button.click()
    wait_until(lambda: False, 1)
    save(None, "install-2-not-now-message-bar.png")
    if BEFORE_ONLY:
        return
    bar_buttons = [b for item in iface.messageBar().items() for b in item.findChildren(QPushButton)]
    bar_buttons[0].click()  # the message bar's Install button brings the dialog back
    wait_until(ready, 60)
    if BUILD:
        dialog.build_combo.setCurrentIndex(dialog.build_combo.findData(BUILD))
    dialog.install_button.click()
    wait_until(lambda: dialog.progress_bar.value() >= 40 or dialog.state != "installing", 3600)
    wait_until(lambda: False, 2)
    save(dialog, "install-3-during.png")
    wait_until(lambda: dialog.state != "installing", 3600)
    RESULT["state"] = dialog.state
    save(dialog, "install-4-after.png")
    os.environ.update(BROKEN)  # the next install (same command, same flags) gets a package that cannot be imported
    dialog.back_button.click()
    wait_until(ready, 60)
    dialog.install_button.click()
    wait_until(lambda: dialog.state != "installing", 600)
    RESULT["failed_state"] = dialog.state
    save(dialog, "install-5-failed.png")
"""



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--torch-build", default="", help="build to install (default: the recommended one)")
    parser.add_argument("--small", action="store_true", help="install only six instead of the real requirements")
    parser.add_argument("--before-only", action="store_true", help="only the pictures before an install")
    args = parser.parse_args()
    if desktop_missing():
        print(f"error: {desktop_missing()}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="iamap-screenshots-"))
    try:
        env = {"IAMAP_ENV_DIR": str(root / "worker-env"), "IAMAP_PYTHON": "", "IAMAP_TORCH_BUILD": "",
               **(sets.six_set(root / "small") if args.small else {})}
        body = BODY.format(out=str(args.out.resolve()), build=args.torch_build, broken=sets.broken_set(root / "broken"),
                           before_only=args.before_only)
        result = run_desktop(body, root / "qgis", env, timeout=3600)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if "exception" in result:
        print(result["exception"], file=sys.stderr)
        return 1
    print(f"install: {result.get('state')}, broken reinstall: {result.get('failed_state')}")
    for name in sorted(result.get("saved", [])):
        print(args.out / name)
    if args.before_only:
        return 0 if len(result.get("saved", [])) == 3 else 1
    return 0 if result.get("state") == "succeeded" and result.get("failed_state") == "failed" else 1


if __name__ == "__main__":
    sys.exit(main())
