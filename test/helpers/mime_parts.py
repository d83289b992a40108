# Parses a message from stdin with Python's email package (independent of the MIME code under
# test) and prints its leaf parts as JSON: type, charset, transfer encoding, disposition and, for
# text parts, the decoded text.
import email
import email.policy
import json
import sys

message = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.compat32)
parts = []
for part in message.walk():
    if part.is_multipart():
        continue
    payload = part.get_payload(decode=True) or b''
    charset = part.get_content_charset()
    entry = {
        'type': part.get_content_type(),
        'charset': charset,
        'cte': (part.get('Content-Transfer-Encoding') or '7bit').lower(),
        'disposition': part.get_content_disposition(),
        'defects': [type(d).__name__ for d in part.defects],
    }
    if part.get_content_maintype() == 'text':
        entry['text'] = payload.decode(charset or 'us-ascii', errors='strict')
    else:
        entry['bytes'] = len(payload)
    parts.append(entry)
print(json.dumps({'defects': [type(d).__name__ for d in message.defects], 'parts': parts}))
