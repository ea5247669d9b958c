// A stand-in for `orion ui` to work on the page without a cluster: it serves the bundled page
// and the HTTP API of docs/ui.md with made-up data (log-normal latencies, roughly bucketed,
// three nodes). For development only; the tests run the real `orion ui`
// (tests/ui/, docs/ui.md).
//
//   node dev/fixture_server.mjs PAGE.html [PORT]      prints the URL with its token
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';


const [page, port = '7071'] = process.argv.slice(2);
const token = randomBytes(16).toString('hex');
const nodes = [
  { node: 'app@web1', host: 'web1', daemon: 'orion@web1' },
  { node: 'app@web2', host: 'web2', daemon: 'orion@web2' },
  { node: 'app@web3', host: 'web3', daemon: 'orion@web3' },
];
const known = ['lists:sort/1', 'lists:sort/2', 'lists:sublist/2', 'lists:sublist/3', 'ets:lookup/2',
  'ets:insert/2', 'Enum.map/2', 'Enum.reduce/3', 'MyApp.Repo.get/2', 'MyApp.Repo.all/1',
  'orion_demo:handle/1', 'orion_demo:db_query/1', 'orion_demo:render/1', 'orion_demo:lookup/1'];
const captures = new Map();
let nextId = 1;

function gaussian() {
  return Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
}

function sketchOf(n, median, sigma) {
  const bins = new Map();
  for (let i = 0; i < n; ++i) {
    const ns = Math.max(1, Math.round(median * Math.exp(sigma * gaussian())));
    const index = Math.floor(Math.log2(ns) * 64);  // close enough for made-up data
    bins.set(index, (bins.get(index) || 0) + 1);
  }
  return { zero: 0, bins: [...bins.entries()].sort((a, b) => a[0] - b[0]) };
}

function interval(capture, seq, endMs) {
  return {
    seq, end_ms: endMs, interval_ms: 1000,
    nodes: nodes.filter((n) => !capture.down.has(n.node)).map((n, k) => ({
      node: n.node, host: n.host, lost: 0,
      functions: capture.functions.map((name, j) => {
        const calls = 200 + 50 * j + Math.round(40 * Math.random());
        const slow = k === 2 ? 3 : 1;
        const median = 2000 * (j + 1) * slow * (1 + 0.3 * Math.sin(seq / 30));
        return { name, calls, exceptions: 0, wall: sketchOf(calls, median, 0.6), cpu: sketchOf(calls, median / 4, 0.4) };
      }),
    })),
  };
}

function json(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(body === undefined ? '' : JSON.stringify(body));
}

const server = createServer((req, res) => {
  const url = new URL(req.url, `http://${req.headers.host}`);
  const given = url.searchParams.get('token') || (req.headers.authorization || '').replace(/^Bearer /, '');
  if (given !== token) return json(res, 401, { error: 'missing or wrong token' });
  if (url.pathname === '/' || url.pathname === '/index.html') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    return res.end(readFileSync(page));
  }
  if (url.pathname === '/api/nodes') return json(res, 200, { nodes });
  if (url.pathname === '/api/functions') {
    const prefix = url.searchParams.get('prefix') || '';
    const functions = known.filter((f) => f.startsWith(prefix));
    return json(res, 200, { functions, truncated: false });
  }
  if (url.pathname === '/api/captures' && req.method === 'GET') {
    return json(res, 200, { captures: [...captures.values()].map((c) => c.info) });
  }
  if (url.pathname === '/api/captures' && req.method === 'POST') {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const request = JSON.parse(body);
      const id = `c${nextId++}`;
      const functions = request.patterns.flatMap((p) => {
        const matching = known.filter((f) => f.startsWith(p.replace(/\/.*$/, '')));
        return matching.length ? matching : [p];
      });
      const capture = { info: { id, patterns: request.patterns, node: request.node || '', match_spec: request.match_spec || '',
        state: 'running', started_ms: Date.now(), duration_s: request.duration_s || 600 },
      functions: functions.length ? functions : request.patterns, intervals: [], down: new Set(), clients: new Set() };
      // Ten minutes of history already, so the page has a full window to draw.
      const now = Date.now();
      for (let seq = 1; seq <= 600; ++seq) capture.intervals.push(interval(capture, seq, now - (600 - seq) * 1000));
      capture.timer = setInterval(() => {
        const seq = capture.intervals.length + 1;
        if (seq === 640) capture.down.add('app@web3');
        if (seq === 660) capture.down.delete('app@web3');
        const event = interval(capture, seq, Date.now());
        capture.intervals.push(event);
        if (capture.intervals.length > 600) capture.intervals.shift();
        for (const c of capture.clients) c.write(`event: interval\ndata: ${JSON.stringify(event)}\n\n`);
        if (seq === 640) for (const c of capture.clients) c.write(`event: node\ndata: ${JSON.stringify({ node: 'app@web3', status: 'down', reason: 'connection closed' })}\n\n`);
      }, 1000);
      captures.set(id, capture);
      json(res, 201, { id });
    });
    return undefined;
  }
  const m = /^\/api\/captures\/([^/]+)(\/events|\/stop|\/restart)?$/.exec(url.pathname);
  const capture = m && captures.get(m[1]);
  if (!capture) return json(res, 404, { error: 'no such capture' });
  if (m[2] === '/events') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
    for (const event of capture.intervals) res.write(`event: interval\ndata: ${JSON.stringify(event)}\n\n`);
    res.write(`event: state\ndata: ${JSON.stringify({ state: capture.info.state })}\n\n`);
    capture.clients.add(res);
    req.on('close', () => capture.clients.delete(res));
    return undefined;
  }
  if (m[2] === '/stop') {
    clearInterval(capture.timer);
    capture.info.state = 'stopped';
    for (const c of capture.clients) c.write(`event: state\ndata: ${JSON.stringify({ state: 'stopped', reason: 'stopped by the user' })}\n\n`);
    return json(res, 200, {});
  }
  if (req.method === 'DELETE') {
    clearInterval(capture.timer);
    captures.delete(m[1]);
    res.writeHead(204);
    return res.end();
  }
  return json(res, 200, { id: capture.info.id, state: capture.info.state });
});
server.listen(Number(port), '127.0.0.1', () => console.log(`http://127.0.0.1:${port}/?token=${token}`));
