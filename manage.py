#!/usr/bin/env python
import os
import sys


def main() -> None:
    # The demo brings its own settings (DEBUG on, keys of its own under var/): `manage.py demo`
    # works on a fresh machine; everything else is production's unless told otherwise.
    demo = sys.argv[1:2] == ["demo"]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dlrconsole.settings_demo" if demo else "dlrconsole.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
