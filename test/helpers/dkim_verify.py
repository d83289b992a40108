# Verifies the DKIM signatures of a message read from stdin with dkimpy, an implementation
# independent of the one mtrelay signs with, asking the test's DNS server for the keys.
# Usage: dkim_verify.py HOST PORT  → prints "pass" or "fail: <reason>"
import logging
import sys

import dkim
import dns.resolver

host, port = sys.argv[1], int(sys.argv[2])
resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = [host]
resolver.port = port


def txt(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    try:
        answer = resolver.resolve(name.rstrip('.'), 'TXT', lifetime=timeout)
    except Exception:
        return None
    for record in answer:
        return b''.join(record.strings)
    return None


class Reasons(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


reasons = Reasons()
logger = logging.getLogger('dkim')
logger.addHandler(reasons)
logger.setLevel(logging.DEBUG)
message = sys.stdin.buffer.read()
verifier = dkim.DKIM(message, logger=logger)
try:
    print('pass' if verifier.verify(dnsfunc=txt) else 'fail: ' + ' | '.join(reasons.lines[-3:]))
except dkim.DKIMException as error:
    print('fail: ' + str(error))
