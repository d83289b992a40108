// Which opens and clicks a machine made rather than a reader: the tracker cannot know, so it
// flags what is known to be automatic and says why, and events keep the raw facts (client
// address, user agent) for a sender's own rules. The rules, in order:
// - apple_privacy_proxy: Apple Mail Privacy Protection fetches every image of every message
//   when it arrives, whether or not it is read, from Apple's network (17.0.0.0/8) with the bare
//   user agent "Mozilla/5.0".
// - link_scanner: security gateways that open links before a reader can (Microsoft Defender
//   Safe Links, Proofpoint, Mimecast, Barracuda, Cisco, Symantec, Trend Micro, Sophos, …) and
//   crawlers that name themselves (bot, crawler, spider, preview).
// - headless_browser: "HeadlessChrome" and similar; scanners drive them, readers do not.
// - http_library: curl, wget, python-requests, Go's, Java's and Node.js's HTTP clients, and
//   requests with no user agent at all.
// Proxies that fetch images when a reader opens the message (Gmail's GoogleImageProxy,
// Yahoo's) are real opens: not flagged.
import { isIPv4 } from 'node:net';

export type MachineReason = 'apple_privacy_proxy' | 'link_scanner' | 'headless_browser' | 'http_library';

const SCANNERS = /(bot|crawler|spider)\b|\b(preview|scanner|safelinks|proofpoint|mimecast|barracuda|ironport|cisco|symantec|messagelabs|trend ?micro|sophos|forcepoint|fortinet|zscaler|checkpoint)\b/i;
const HEADLESS = /headless|phantomjs|puppeteer|playwright|selenium/i;
const LIBRARIES = /^(curl|wget|python-requests|python-urllib|aiohttp|go-http-client|java|okhttp|apache-httpclient|node-fetch|undici|axios|libwww-perl|ruby)\b/i;

function appleNetwork(ip: string): boolean {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  return isIPv4(v4) && v4.split('.')[0] === '17';
}

/** Why a request looks automatic, or undefined when it looks like a reader. */
export function machineReason(request: { ip: string; userAgent: string }): MachineReason | undefined {
  const agent = request.userAgent.trim();
  if (agent === 'Mozilla/5.0' && appleNetwork(request.ip)) return 'apple_privacy_proxy';
  if (!agent || LIBRARIES.test(agent)) return 'http_library';
  if (HEADLESS.test(agent)) return 'headless_browser';
  if (SCANNERS.test(agent)) return 'link_scanner';
  return undefined;
}
