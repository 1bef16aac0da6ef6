"""Print the README's configuration table from the declared settings."""

from dashboard.settings import SETTINGS

print("| setting | default | meaning |")
print("|---|---|---|")
for s in SETTINGS:
    default = f"`{s.default}`" if s.default else "(empty)"
    print(f"| `{s.name}` | {default} | {s.help} |")
