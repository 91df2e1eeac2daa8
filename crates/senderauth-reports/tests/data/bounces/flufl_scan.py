"""Prints, as JSON, what flufl.bounce (GNU Mailman's bounce detectors) finds in each bounce
named on the command line: {file name: {"temporary": [...], "permanent": [...]}}."""
import email
import json
import sys

from flufl.bounce import all_failures


def addresses(found):
    return sorted(
        (item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)).lower() for item in found
    )


result = {}
for path in sys.argv[1:]:
    with open(path, "rb") as file:
        message = email.message_from_binary_file(file)
    temporary, permanent = all_failures(message)
    result[path.rsplit("/", 1)[-1]] = {"temporary": addresses(temporary), "permanent": addresses(permanent)}
print(json.dumps(result))
