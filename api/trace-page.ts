// The trace page (GET /trace): one transmission's timeline per recipient, for a person with an
// API key that has events/read. The page is static; its script asks the API
// (GET /api/v1/events/trace/<id>) with the key in the Authorization header, so the key is never
// in a URL, a log or a cookie (it stays in the tab's sessionStorage). Everything an event
// carries (subjects, user agents, reasons) is written as text, never as HTML, and the Content
// Security Policy allows only the page's own script and style.
import { createHash } from 'node:crypto';

const STYLE = `
body { font: 15px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; color: #1d232a; }
form { display: flex; gap: .5em; flex-wrap: wrap; margin-bottom: 1.5em; }
input { font: inherit; padding: .3em .5em; min-width: 16em; }
#error { color: #a4161a; }
.recipient { border-top: 1px solid #ccd; padding-top: .5em; }
.status { font-weight: normal; font-size: .8em; padding: .1em .5em; border-radius: .8em; background: #e6e9ee; }
.status-delivered { background: #d3f2dc; } .status-bounced, .status-rejected, .status-complained { background: #f8d7da; } .status-delayed, .status-unsubscribed { background: #fff1c2; }
ol { list-style: none; padding: 0; } li { display: grid; grid-template-columns: 15em 9em 1fr; gap: .5em; padding: .15em 0; }
time, .type { color: #5b6470; font-variant-numeric: tabular-nums; }
`;

const SCRIPT = `
const form = document.getElementById('lookup');
const keyInput = document.getElementById('key');
const idInput = document.getElementById('transmission');
const errorBox = document.getElementById('error');
const output = document.getElementById('trace');
keyInput.value = sessionStorage.getItem('mtrelay-api-key') || '';
idInput.value = new URLSearchParams(location.search).get('transmission') || '';

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function render(trace) {
  output.replaceChildren();
  const title = element('h1', 'Transmission ' + trace.transmission_id);
  output.append(title);
  if (trace.subject || trace.friendly_from) output.append(element('p', [trace.subject ? '“' + trace.subject + '”' : '', trace.friendly_from ? 'from ' + trace.friendly_from : ''].filter(Boolean).join(' '), 'summary'));
  if (!trace.recipients.length) output.append(element('p', 'No events: the id is unknown to this account, or its events are past the retention.', 'empty'));
  for (const r of trace.recipients) {
    const section = element('section', undefined, 'recipient');
    section.dataset.rcpt = r.rcpt_to;
    section.dataset.status = r.status;
    const heading = element('h2', r.rcpt_to + ' ');
    heading.append(element('span', r.status, 'status status-' + r.status));
    const steps = element('ol');
    for (const s of r.steps) {
      const item = element('li');
      item.dataset.type = s.type;
      const when = element('time', new Date(s.timestamp).toISOString().replace('T', ' ').replace('Z', ' UTC'));
      when.dateTime = s.timestamp;
      item.append(when, element('span', s.type, 'type'), element('span', s.detail, 'detail'));
      steps.append(item);
    }
    section.append(heading, steps);
    output.append(section);
  }
  if (trace.truncated) output.append(element('p', 'More events than a trace shows: search them with the events API.', 'truncated'));
}

async function show() {
  errorBox.textContent = '';
  const key = keyInput.value.trim();
  const id = idInput.value.trim();
  if (!key || !id) { errorBox.textContent = 'Enter an API key with events/read and a transmission id.'; return; }
  sessionStorage.setItem('mtrelay-api-key', key);
  history.replaceState(null, '', '?transmission=' + encodeURIComponent(id));
  output.setAttribute('aria-busy', 'true');
  try {
    const response = await fetch('/api/v1/events/trace/' + encodeURIComponent(id), { headers: { authorization: key } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      output.replaceChildren();
      errorBox.textContent = (body.errors && body.errors[0] && body.errors[0].message) || ('The API answered ' + response.status);
      return;
    }
    render(body.results);
  } catch (error) {
    errorBox.textContent = 'The API could not be reached: ' + error.message;
  } finally {
    output.removeAttribute('aria-busy');
  }
}

form.addEventListener('submit', (event) => { event.preventDefault(); show(); });
if (keyInput.value && idInput.value) show();
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export const TRACE_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Message trace · mtrelay</title>
<style>${STYLE}</style>
</head>
<body>
<form id="lookup">
<input id="key" type="password" autocomplete="off" placeholder="API key (events/read)" aria-label="API key">
<input id="transmission" inputmode="numeric" placeholder="Transmission id" aria-label="Transmission id">
<button type="submit">Show trace</button>
</form>
<p id="error" role="alert"></p>
<main id="trace"></main>
<script>${SCRIPT}</script>
</body>
</html>
`;

export const TRACE_PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': `default-src 'none'; script-src ${sha256(SCRIPT)}; style-src ${sha256(STYLE)}; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'`,
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
};
