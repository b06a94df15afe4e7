"""Render tests/devcloud/templates/** into the state's etc/ directory.

Placeholders are @NAME@ and are filled from the environment variable DC_NAME.
A placeholder without a value is an error, so a template can never silently
carry a hard-coded or empty path, port or password into a service.

Usage: render.py TEMPLATE_DIR OUTPUT_DIR
"""

import os
import re
import sys

PLACEHOLDER = re.compile(r'@([A-Z][A-Z0-9_]*)@')


def render_text(text, where):
    missing = set()

    def sub(match):
        value = os.environ.get('DC_' + match.group(1))
        if value is None:
            missing.add(match.group(1))
            return match.group(0)
        return value

    out = PLACEHOLDER.sub(sub, text)
    if missing:
        sys.exit('render: {}: no value for {}'.format(where, ', '.join(sorted(missing))))
    return out


def main(src, dst):
    for root, _dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        for name in files:
            path = os.path.join(root, name)
            with open(path, encoding='utf-8') as f:
                text = render_text(f.read(), path)
            target_dir = os.path.normpath(os.path.join(dst, rel))
            os.makedirs(target_dir, exist_ok=True)
            target = os.path.join(target_dir, name)
            # Rendered configs hold passwords: keep them private to the owner.
            tmp = target + '.tmp'
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, 'w', encoding='utf-8') as f:
                f.write(text)
            os.replace(tmp, target)


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
