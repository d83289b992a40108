// PROXY protocol version 2, the binary header AWS NLB and other load balancers send, for a
// library (smtp-server) that reads only version 1. In front of its connection handler, a v2
// header from an allowed load balancer is read and put back as the equivalent v1 line, which
// smtp-server then reads as usual; v1 headers and everything else pass untouched.
// https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt section 2.2
import net from 'node:net';

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const HEADER_BYTES = 16;
/** A load balancer sends its header at once; a peer that does not is dropped. */
const HEADER_TIMEOUT_MS = 10_000;

const ipv6 = (bytes: Buffer) => Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16)).join(':');

/** The v1 line that says what a complete v2 header says (UNKNOWN: use the connection's own addresses). */
export function v2ToV1(header: Buffer): string {
  const command = header[12]! & 0x0f;
  const family = header[13]!;
  const addresses = header.subarray(HEADER_BYTES);
  if (command === 0x1 && family === 0x11 && addresses.length >= 12) {
    const ip = (offset: number) => Array.from(addresses.subarray(offset, offset + 4)).join('.');
    return `PROXY TCP4 ${ip(0)} ${ip(4)} ${addresses.readUInt16BE(8)} ${addresses.readUInt16BE(10)}\r\n`;
  }
  if (command === 0x1 && family === 0x21 && addresses.length >= 36) {
    return `PROXY TCP6 ${ipv6(addresses.subarray(0, 16))} ${ipv6(addresses.subarray(16, 32))} ${addresses.readUInt16BE(32)} ${addresses.readUInt16BE(34)}\r\n`;
  }
  // LOCAL (health checks of the load balancer itself), UDP or UNIX sockets: no client to name.
  return 'PROXY UNKNOWN\r\n';
}

/**
 * Reads what the peer sent first; a v2 header is replaced by its v1 line. Resolves once the
 * bytes to hand on are back in the socket's buffer; rejects when the peer sends no header in time.
 */
export function translateProxyHeader(socket: net.Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const finish = (error?: Error, data?: Buffer) => {
      clearTimeout(timer);
      socket.removeListener('readable', onReadable);
      socket.removeListener('error', onError);
      socket.removeListener('end', onEnd);
      if (error) return reject(error);
      if (data?.length) socket.unshift(data);
      resolve();
    };
    const onError = (error: Error) => finish(error);
    const onEnd = () => finish(new Error('connection closed before a PROXY header'));
    const onReadable = () => {
      for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) received = Buffer.concat([received, chunk]);
      const prefix = received.subarray(0, SIGNATURE.length);
      if (!SIGNATURE.subarray(0, prefix.length).equals(prefix)) return finish(undefined, received); // not v2: as it came
      if (received.length < HEADER_BYTES) return;
      const length = HEADER_BYTES + received.readUInt16BE(14);
      if (received.length < length) return;
      finish(undefined, Buffer.concat([Buffer.from(v2ToV1(received.subarray(0, length)), 'latin1'), received.subarray(length)]));
    };
    const timer = setTimeout(() => finish(new Error(`no PROXY header within ${HEADER_TIMEOUT_MS / 1000} s`)), HEADER_TIMEOUT_MS);
    socket.on('readable', onReadable);
    socket.on('error', onError);
    socket.on('end', onEnd);
  });
}

/**
 * Puts the translation in front of a server's connection handler, for peers `allowed` to send a
 * PROXY header (`true`: every peer). The server keeps listening and tracking its connections as before.
 */
export function acceptProxyV2(server: net.Server, allowed: true | string[]): void {
  const handlers = server.listeners('connection') as ((socket: net.Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: net.Socket) => {
    const hand = () => { for (const handler of handlers) handler.call(server, socket); };
    if (allowed !== true && !allowed.includes(socket.remoteAddress?.replace(/^::ffff:/, '') ?? '')) return hand();
    translateProxyHeader(socket).then(hand, () => socket.destroy());
  });
}
