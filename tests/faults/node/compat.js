// Drives toxiproxy-node-client (the npm package, through its documented API) against a
// running `stormproof proxy`, creating every toxic type the client knows with the attribute
// ranges upstream Toxiproxy accepts, and checks what comes back and what the traffic does.
//
//   node compat.js API_URL ECHO_HOST:PORT
//
// Prints one JSON object per check ({"check", "ok", "detail"}) and a last line
// {"summary": {"passed", "failed"}}; exits 1 if any check failed, 2 on a usage error.
"use strict";

const net = require("net");
const assert = require("assert");
const { Toxiproxy } = require("toxiproxy-node-client");

const [apiUrl, echo] = process.argv.slice(2);
if (!apiUrl || !echo) {
  console.error("usage: node compat.js API_URL ECHO_HOST:PORT");
  process.exit(2);
}

const results = [];
async function check(name, fn) {
  try {
    const detail = await fn();
    results.push({ check: name, ok: true, detail: detail === undefined ? null : detail });
  } catch (err) {
    results.push({ check: name, ok: false, detail: String(err && err.stack ? err.stack : err) });
  }
  console.log(JSON.stringify(results[results.length - 1]));
}

// Every integer attribute is an int64 upstream (the slicer's are Go ints, also 64 bits):
// any integer is accepted, negatives included. JavaScript numbers are exact up to 2^53.
const INTS = [0, 1, 250, -1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER];
const TYPES = {
  latency: ["latency", "jitter"],
  bandwidth: ["rate"],
  slow_close: ["delay"],
  timeout: ["timeout"],
  slicer: ["average_size", "size_variation", "delay"],
  limit_data: ["bytes"],
  reset_peer: ["timeout"],
};
const TOXICITIES = [1, 0.5, 0, 0.25, 1.5, -0.5]; // a float32, not range-checked upstream

function expected(keys, given) {
  const out = {};
  for (const k of keys) out[k] = given[k] === undefined ? 0 : given[k];
  return out;
}

function sameToxic(toxic, want) {
  assert.strictEqual(toxic.name, want.name);
  assert.strictEqual(toxic.type, want.type);
  assert.strictEqual(toxic.stream, want.stream);
  assert.strictEqual(toxic.toxicity, want.toxicity);
  assert.deepStrictEqual(toxic.attributes, want.attributes);
}

function connect(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: "127.0.0.1", port }, () => resolve(sock));
    sock.once("error", reject);
    sock.setNoDelay(true);
  });
}

// Send `payload`, collect what comes back until `want` bytes, EOF, an error or `ms` pass.
function exchange(port, payload, want, ms) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const chunks = [];
    let got = 0;
    let done = false;
    const sock = net.connect({ host: "127.0.0.1", port }, () => sock.write(payload));
    sock.setNoDelay(true);
    const finish = (how, error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ how, error, data: Buffer.concat(chunks), ms: Date.now() - started, reads: chunks.length });
    };
    const timer = setTimeout(() => finish("timeout"), ms);
    sock.on("data", (d) => {
      chunks.push(d);
      got += d.length;
      if (got >= want) finish("complete");
    });
    sock.on("end", () => finish("eof"));
    sock.on("error", (e) => (done ? null : e.code ? finish("error", e.code) : reject(e)));
  });
}

function portOf(proxy) {
  return Number(proxy.listen.split(":").pop());
}

async function main() {
  const toxiproxy = new Toxiproxy(apiUrl);
  await toxiproxy.reset();
  for (const proxy of Object.values(await toxiproxy.getAll())) await proxy.remove();

  await check("version", async () => {
    const text = await toxiproxy.getVersion();
    assert.match(text, /"version"/);
    return text.trim();
  });

  let proxy;
  await check("createProxy/get/getAll", async () => {
    proxy = await toxiproxy.createProxy({ name: "node_compat", listen: "127.0.0.1:0", upstream: echo });
    assert.strictEqual(proxy.enabled, true);
    assert.ok(portOf(proxy) > 0, proxy.listen);
    const again = await toxiproxy.get("node_compat");
    assert.deepStrictEqual(again.toJson(), proxy.toJson());
    assert.deepStrictEqual(Object.keys(await toxiproxy.getAll()), ["node_compat"]);
  });
  if (!proxy) throw new Error("no proxy: cannot go on");

  await check("populate", async () => {
    const made = await toxiproxy.populate([
      { name: "node_compat_a", listen: "127.0.0.1:0", upstream: echo },
      { name: "node_compat_b", listen: "127.0.0.1:0", upstream: echo, enabled: false },
    ]);
    assert.deepStrictEqual(Object.keys(made).sort(), ["node_compat_a", "node_compat_b"]);
    assert.strictEqual(made.node_compat_b.enabled, false);
    await made.node_compat_a.remove();
    await made.node_compat_b.remove();
  });

  // Every type, with every attribute at every edge of the accepted range, both streams, and
  // toxicities in and out of [0, 1]; then get, a partial update, and removal.
  for (const [type, keys] of Object.entries(TYPES)) {
    await check(`${type}: defaults (no name, no stream, no attributes)`, async () => {
      const toxic = await proxy.addToxic({ type });
      sameToxic(toxic, { name: `${type}_downstream`, type, stream: "downstream", toxicity: 1,
                         attributes: expected(keys, {}) });
      await toxic.remove();
    });
    let n = 0;
    for (const value of INTS) {
      for (const key of keys) {
        const stream = n % 2 ? "upstream" : "downstream";
        const toxicity = TOXICITIES[n % TOXICITIES.length];
        const name = `${type}_${n++}`;
        const attributes = { [key]: value };
        await check(`${type}: ${key}=${value} ${stream} toxicity=${toxicity}`, async () => {
          const toxic = await proxy.addToxic({ name, type, stream, toxicity, attributes });
          const want = { name, type, stream, toxicity, attributes: expected(keys, attributes) };
          sameToxic(toxic, want);
          sameToxic(await proxy.getToxic(name), want);
          const other = keys[(keys.indexOf(key) + 1) % keys.length];
          const updated = await toxic.update({ attributes: { [other]: 7 }, toxicity: 1 });
          sameToxic(updated, { ...want, toxicity: 1, attributes: { ...want.attributes, [other]: 7 } });
          await updated.remove();
          await assert.rejects(proxy.getToxic(name), /status code 404/);
        });
      }
    }
  }

  await check("duplicate toxic name is refused (409)", async () => {
    const toxic = await proxy.addToxic({ type: "latency", name: "dup", attributes: { latency: 1 } });
    await assert.rejects(proxy.addToxic({ type: "latency", name: "dup" }), /status code 409/);
    await toxic.remove();
  });
  await check("unknown toxic type is refused (400)", async () => {
    await assert.rejects(proxy.addToxic({ type: "no_such_toxic" }), /status code 400/);
  });
  await check("non-integer attribute is refused (400), as Go's decoder does", async () => {
    await assert.rejects(proxy.addToxic({ type: "latency", attributes: { latency: 1.5 } }), /status code 400/);
    await assert.rejects(proxy.addToxic({ type: "latency", attributes: { latency: "1" } }), /status code 400/);
  });

  // The traffic: what each toxic does to bytes through the proxy (an echo server behind it).
  const port = portOf(proxy);
  const payload = Buffer.alloc(4096, "x");
  await check("traffic: no toxic, 4 KiB echoed", async () => {
    const r = await exchange(port, payload, payload.length, 5000);
    assert.strictEqual(r.how, "complete");
    assert.ok(r.data.equals(payload));
    return `${r.ms} ms`;
  });
  await check("traffic: latency 150 ms downstream", async () => {
    const toxic = await proxy.addToxic({ type: "latency", attributes: { latency: 150, jitter: 0 } });
    const r = await exchange(port, Buffer.from("ping"), 4, 5000);
    await toxic.remove();
    assert.strictEqual(r.how, "complete");
    assert.ok(r.ms >= 140, `round trip ${r.ms} ms`);
    return `${r.ms} ms`;
  });
  await check("traffic: slicer with size_variation above average_size keeps every byte", async () => {
    const toxic = await proxy.addToxic({ type: "slicer", attributes: { average_size: 64, size_variation: 100, delay: 10 } });
    const r = await exchange(port, payload, payload.length, 5000);
    await toxic.remove();
    assert.strictEqual(r.how, "complete");
    assert.ok(r.data.equals(payload));
    return `${r.reads} reads`;
  });
  await check("traffic: slicer with zero and negative sizes passes data through", async () => {
    const toxic = await proxy.addToxic({ type: "slicer", attributes: { average_size: 0, size_variation: -5, delay: -1 } });
    const r = await exchange(port, payload, payload.length, 5000);
    await toxic.remove();
    assert.strictEqual(r.how, "complete");
    assert.ok(r.data.equals(payload));
  });
  await check("traffic: bandwidth 100 KB/s paces 20 kB", async () => {
    const toxic = await proxy.addToxic({ type: "bandwidth", attributes: { rate: 100 } });
    const big = Buffer.alloc(20000, "y");
    const r = await exchange(port, big, big.length, 10000);
    await toxic.remove();
    assert.strictEqual(r.how, "complete");
    assert.ok(r.ms >= 150, `${r.ms} ms`);
    return `${r.ms} ms`;
  });
  await check("traffic: limit_data 10 bytes then close", async () => {
    const toxic = await proxy.addToxic({ type: "limit_data", attributes: { bytes: 10 } });
    const r = await exchange(port, payload, payload.length, 5000);
    await toxic.remove();
    assert.notStrictEqual(r.how, "complete");
    assert.ok(r.data.length <= 10, `${r.data.length} bytes`);
  });
  await check("traffic: limit_data with negative bytes closes at once", async () => {
    const toxic = await proxy.addToxic({ type: "limit_data", attributes: { bytes: -3 } });
    const r = await exchange(port, payload, payload.length, 5000);
    await toxic.remove();
    assert.strictEqual(r.data.length, 0);
    assert.notStrictEqual(r.how, "timeout");
  });
  await check("traffic: timeout 200 ms drops data and closes", async () => {
    const toxic = await proxy.addToxic({ type: "timeout", attributes: { timeout: 200 } });
    const r = await exchange(port, payload, payload.length, 5000);
    await toxic.remove();
    assert.strictEqual(r.data.length, 0);
    assert.notStrictEqual(r.how, "timeout");
    assert.ok(r.ms >= 150, `${r.ms} ms`);
    return `${r.how} after ${r.ms} ms`;
  });
  await check("traffic: reset_peer sends a TCP reset", async () => {
    const toxic = await proxy.addToxic({ type: "reset_peer", attributes: { timeout: 0 } });
    const r = await exchange(port, payload, payload.length, 5000);
    await toxic.remove();
    assert.strictEqual(r.how, "error");
    assert.strictEqual(r.error, "ECONNRESET");
  });
  await check("down: proxy.update({enabled: false}) refuses connections, true restores", async () => {
    const down = await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
    assert.strictEqual(down.enabled, false);
    await assert.rejects(connect(port), /ECONNREFUSED/);
    const up = await down.update({ enabled: true, listen: proxy.listen, upstream: proxy.upstream });
    assert.strictEqual(up.enabled, true);
    const r = await exchange(port, Buffer.from("pong"), 4, 5000);
    assert.strictEqual(r.how, "complete");
  });

  await check("reset removes every toxic", async () => {
    await proxy.addToxic({ type: "latency", attributes: { latency: 10 } });
    await toxiproxy.reset();
    const again = await toxiproxy.get("node_compat");
    assert.strictEqual(again.enabled, true);
    await assert.rejects(again.getToxic("latency_downstream"), /status code 404/);
    await again.remove();
  });
}

main()
  .catch((err) => results.push({ check: "main", ok: false, detail: String(err && err.stack ? err.stack : err) }))
  .finally(() => {
    const failed = results.filter((r) => !r.ok).length;
    console.log(JSON.stringify({ summary: { passed: results.length - failed, failed } }));
    process.exitCode = failed ? 1 : 0;
  });
