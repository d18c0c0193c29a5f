"""Prints ``civility demo``'s JSON (read on stdin) for a person: keys, URLs and curl lines."""

import json
import os
import shlex
import sys


def main() -> None:
    """Read the demo's JSON from stdin and print it readably."""
    demo = json.load(sys.stdin)
    keys = demo["keys"]
    env_file = os.path.relpath(demo["env_file"])
    if env_file.startswith(".."):
        env_file = demo["env_file"]
    print(f"""
Civility is starting. Demo site {demo["site_id"]}, article {demo["article"]!r}.

  site key       {keys["site"]}
  moderator key  {keys["moderator"]}
  admin key      {keys["admin"]}

For the README's examples, set them (and API, the address) in your shell:
  source {shlex.quote(env_file)}

Moderation dashboard: {demo["dashboard"]}
  sign in with the moderator key (the admin key also opens Settings); press ? for shortcuts.
Demo article:         {demo["demo_page"]}
  leave a comment as the demo reader; watch it go pending, then published or held.

Try (the demo's comments are scored within seconds of the worker starting):
""")
    for line in demo["curl"]:
        print(f"  {line}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
