// Exit-detection latency of pm2, for bench/run.sh.
//
// Usage: NODE_PATH=$(npm root -g) PM2_HOME=DIR node pm2_exit.js RUNS SLEEP_MS MARKER_DIR
// Each run starts `sh -c 'sleep S; exec date +%s%N > marker'` under pm2 with
// autorestart off; the command stamps its own exit time. Prints, like the
// Rust helper, `NAME median p95 mean min` in milliseconds after that stamp:
//   recorded  the `at` time pm2's daemon put on its exit event
//   visible   when this client received that event on the bus
const fs = require('fs');
const path = require('path');
const pm2 = require('pm2');

const [runs, sleepMs, markerDir] = [Number(process.argv[2] || 20), Number(process.argv[3] || 300), process.argv[4]];

function summary(values) {
  const v = [...values].sort((a, b) => a - b);
  const n = v.length;
  const median = n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  const p95 = v[Math.min(n, Math.max(1, Math.ceil(0.95 * n))) - 1];
  const mean = v.reduce((a, b) => a + b, 0) / n;
  return [median, p95, mean, v[0]].map((x) => x.toFixed(2)).join(' ');
}

function fail(err) {
  console.error(`pm2_exit: ${err && err.message ? err.message : err}`);
  pm2.disconnect();
  process.exit(1);
}

pm2.connect((err) => {
  if (err) return fail(err);
  pm2.launchBus((err, bus) => {
    if (err) return fail(err);
    const recorded = [];
    const visible = [];
    let pending = null;
    bus.on('process:event', (packet) => {
      if (!pending || packet.event !== 'exit' || packet.process.name !== pending.name) return;
      const receivedAt = Date.now();
      const done = pending;
      pending = null;
      done.resolve({ at: packet.at, receivedAt });
    });
    const once = (i) =>
      new Promise((resolve, reject) => {
        const name = `bench-exit-${i}`;
        const marker = path.join(markerDir, `pm2-exit-${i}`);
        pending = { name, resolve };
        pm2.start(
          {
            name,
            script: '/bin/sh',
            args: ['-c', `sleep ${sleepMs / 1000}; exec date +%s%N > '${marker}'`],
            interpreter: 'none',
            exec_mode: 'fork',
            autorestart: false,
          },
          (err) => err && reject(err),
        );
      }).then(
        ({ at, receivedAt }) =>
          new Promise((resolve, reject) => {
            // The marker is written just before the exit; give the fs a moment.
            const read = (tries) => {
              let text;
              try {
                text = fs.readFileSync(path.join(markerDir, `pm2-exit-${i}`), 'utf8').trim();
              } catch (e) {
                if (tries > 0) return setTimeout(() => read(tries - 1), 10);
                return reject(e);
              }
              const exitedMs = Number(BigInt(text) / 1000n) / 1000;
              recorded.push(at - exitedMs);
              visible.push(receivedAt - exitedMs);
              pm2.delete(`bench-exit-${i}`, () => resolve());
            };
            read(50);
          }),
      );
    (async () => {
      for (let i = 0; i < runs; i++) await once(i);
      console.log(`recorded ${summary(recorded)}`);
      console.log(`visible ${summary(visible)}`);
      pm2.disconnect();
      process.exit(0);
    })().catch(fail);
  });
});
