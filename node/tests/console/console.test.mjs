// The console in headless Chromium: the pod view, the audit log with its filters, and a receipt verified in the
// browser (and refused once tampered with). Run by scripts/console-test.sh against a running devnet:
//   CONSOLE=https://127.0.0.1:PORT/ RECEIPT=r.cose TASK=<request hash> CALLER=ed25519:<hex> CALLER_KEY=caller.key \
//   AUDITOR_KEY=auditor.key node console.test.mjs
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import assert from "node:assert/strict";

const { CONSOLE, RECEIPT, TASK, CALLER, CALLER_KEY, AUDITOR_KEY, SCREENSHOT } = process.env;
assert.ok(CONSOLE && RECEIPT && TASK && CALLER && CALLER_KEY && AUDITOR_KEY,
  "CONSOLE, RECEIPT, TASK, CALLER, CALLER_KEY and AUDITOR_KEY must be set");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
let failed = false;
try {
  // The certificate is self-signed and attested: a browser cannot check the evidence, so it is not validated here.
  const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(CONSOLE);
  await page.waitForSelector("body[data-ready='1']", { timeout: 20000 });

  // The pod: four validators, simulated, attested, with their labels; the insecure-sim warning shows.
  const rows = page.locator("#nodes tbody tr");
  assert.equal(await rows.count(), 4, "four validators");
  for (let i = 0; i < 4; i++) {
    const t = await rows.nth(i).innerText();
    assert.match(t, /node-\d/);
    assert.match(t, /\bsim\b/, `node ${i} platform: ${t}`);
    assert.match(t, /5a5a5a5a/, `node ${i} measurement: ${t}`);
    assert.match(t, /accepted/, `node ${i} verdict: ${t}`);
  }
  assert.match(await rows.nth(0).innerText(), /cloud=local/);
  assert.ok(await page.locator("#sim-warning").isVisible(), "the sim warning is shown");

  // The audit log, filtered by applet, by caller, and by task id. Wait until an action's rows are shown (the
  // console counts its loads), not for a fixed time.
  const audit = page.locator("#audit tbody tr");
  const loaded = async (action) => {
    const before = await page.getAttribute("#audit tbody", "data-loaded");
    await action();
    await page.waitForFunction(
      (prev) => document.querySelector("#audit tbody").dataset.loaded !== (prev ?? undefined),
      before,
      { timeout: 20000 },
    );
  };
  const search = async (fields) => {
    for (const name of ["request", "caller", "applet"]) await page.fill(`#filters input[name=${name}]`, fields[name] || "");
    await loaded(() => page.click("#search"));
  };
  const note = () => page.locator("#audit-note");

  // Nobody signed in: the record is not shown (the node answers 401), and the page says how to read it.
  assert.equal(await audit.count(), 0, "no entries before signing in");
  assert.match(await note().innerText(), /Sign in/);
  // The caller, signed in with its key file (the signature is made in the browser): its own entries only, and a
  // search for another caller's is refused.
  await loaded(() => page.setInputFiles("#key-file", CALLER_KEY));
  assert.match(await page.textContent("#reader"), new RegExp(CALLER));
  const own = await audit.count();
  assert.ok(own >= 3, `the caller's own entries: ${own}`);
  for (let i = 0; i < own; i++) assert.ok((await audit.nth(i).innerText()).includes(CALLER.slice(0, 24)), "only its own");
  await search({ caller: "ed25519:" + "11".repeat(32) });
  assert.equal(await audit.count(), 0, "another caller's entries are not shown");
  assert.match(await note().innerText(), /only its own/);
  // The pod's auditor sees the whole log.
  await loaded(() => page.setInputFiles("#key-file", AUDITOR_KEY));
  await search({ applet: "notes" });
  const n = await audit.count();
  assert.ok(n >= 3, `notes entries: ${n}`);
  for (let i = 0; i < n; i++) assert.match(await audit.nth(i).innerText(), /\bnotes\b/);
  const refused = await page.locator("#audit tbody tr[data-kind='request_rejected']").count();
  assert.ok(refused >= 1, "the refused request is in the log");
  await search({ caller: "ed25519:" + "00".repeat(32) });
  assert.equal(await audit.count(), 0, "no entries for an unknown caller");
  await search({ caller: CALLER });
  assert.ok((await audit.count()) >= 3, "the caller's entries");
  await search({ request: TASK });
  assert.equal(await audit.count(), 1, "one entry for the task id");

  // Its receipt, verified in the browser.
  await audit.nth(0).click();
  await page.waitForFunction(() => ["VALID", "INVALID", "ERROR"].includes(document.querySelector("#verdict").textContent));
  assert.equal(await page.textContent("#verdict"), "VALID", await page.textContent("#verdict-detail"));
  const checks = await page.locator("#checks li").allInnerTexts();
  assert.ok(checks.length >= 8 && checks.every((c) => !c.includes("✗")), checks.join("\n"));
  assert.match(await page.textContent("#receipt-fields"), new RegExp(TASK));
  // Who ran it: the executor's attestation entry (devnet nodes re-attest as they start, so it is usually their
  // re-attestation), proven in the same tree; its evidence is named, not judged, here.
  assert.ok(checks.some((c) => /^receipt\.executor: node-\d attested by entry \d+ \((genesis|reattested)\), policy of entry 0$/.test(c)), checks.join("\n"));
  assert.match(await page.textContent("#receipt-fields"), /sim, as recorded: TEE evidence is not verified in this browser/);

  // The receipt file as `sigil invoke --receipt-out` saved it: valid; a bit flipped in its signature, or in the
  // middle: invalid.
  const receipt = readFileSync(RECEIPT);
  const verdictOf = async (bytes) => {
    await page.evaluate(() => { document.querySelector("#verdict").textContent = ""; });
    await page.setInputFiles("#receipt-file", { name: "r.cose", mimeType: "application/cose", buffer: Buffer.from(bytes) });
    await page.waitForFunction(() => document.querySelector("#verdict").textContent !== "");
    return [await page.textContent("#verdict"), await page.textContent("#verdict-detail")];
  };
  assert.deepEqual((await verdictOf(receipt))[0], "VALID");
  const sig = Buffer.from(receipt); sig[sig.length - 1] ^= 1;
  const [v1, why1] = await verdictOf(sig);
  assert.equal(v1, "INVALID", why1);
  assert.match(why1, /signature/);
  const mid = Buffer.from(receipt); mid[Math.floor(mid.length / 2)] ^= 0x10;
  assert.notEqual((await verdictOf(mid))[0], "VALID", "a flipped byte in the middle");
  if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT, fullPage: true });
  assert.deepEqual(errors, [], "no script errors");
  console.log("console: ok (pod view, audit filters, receipt verified in the browser, tampered receipts refused)");
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
