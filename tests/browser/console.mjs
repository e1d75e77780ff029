// Drives hookline's console in Debian's headless Chromium (playwright-core, no bundled
// browser). Run by tests/api/console/browser.rs: node console.mjs <base URL> <admin token> <screenshot
// dir> <receiver URL>.
// Exits non-zero on the first failed check; prints "console ok" at the end.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import path from "node:path";

const [base, token, shots, receiverUrl] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  // As root in a closed network: no sandbox, no background connections.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
// A call to hookline's API with the admin token; the parsed JSON answer.
async function api(method, route, body) {
  const res = await fetch(`${base}/api${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${route}: ${res.status}`);
  return res.status === 204 ? null : res.json();
}
let page;
// Presses Tab until the focused element matches `wanted` (at most 80 times); each element
// reached must show a focus outline.
async function tabTo(wanted) {
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press("Tab");
    const el = await page.evaluate(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      return { tagName: el.tagName, id: el.id, type: el.type, value: el.value,
        textContent: el.textContent,
        // console.css's focus ring (3px), not the browser's default.
        outline: style.outlineStyle === "solid" && style.outlineWidth === "3px" };
    });
    assert.ok(el.outline, `no visible focus on ${el.tagName} ${el.id || el.value || el.textContent}`);
    if (wanted(el)) return;
  }
  assert.fail("never reached by Tab");
}
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();

  // Not signed in: the console sends the browser to the sign-in form.
  await page.goto(`${base}/console`);
  assert.match(page.url(), /\/console\/sign-in\?next=%2Fconsole%2Fhooks$/);
  await page.screenshot({ path: path.join(shots, "sign-in.png") });

  // A wrong token: refused, with the reason, and no cookie.
  await page.getByLabel("Admin token").fill("not-the-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").getByText("That is not the admin token.").waitFor();
  assert.equal((await context.cookies()).length, 0);

  // The right one, typed and submitted with the keyboard.
  await page.getByLabel("Admin token").fill(token);
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/console\/hooks$/);
  await page.getByRole("heading", { name: "Hooks" }).waitFor();
  const row = page.getByRole("row", { name: /test hook/ });
  await row.waitFor();
  assert.match(await row.innerText(), /User\.Created, PostSignIn/);
  assert.match(await row.innerText(), /Enabled/);
  const cookies = await context.cookies();
  assert.equal(cookies.length, 1);
  assert.equal(cookies[0].httpOnly, true);
  assert.equal(cookies[0].sameSite, "Strict");
  assert.notEqual(cookies[0].value, token);
  // The page's scripts cannot read the session, and the token is nowhere in the browser.
  assert.equal(await page.evaluate(() => document.cookie), "");
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.ok(!page.url().includes(token));

  // A hook made through the form: events picked by their labels, grouped as in Logto.
  await page.getByRole("link", { name: "New hook" }).click();
  await page.getByLabel("Name", { exact: true }).fill("From the console");
  await page.getByLabel("Endpoint URL").fill(receiverUrl);
  await page.getByRole("group", { name: "User" }).getByLabel("User.Created").check();
  await page.getByRole("group", { name: "Organization" }).getByLabel("Organization.Created").check();
  await page.getByLabel(/Custom headers/).fill("x-from: console");
  await page.screenshot({ path: path.join(shots, "new-hook.png"), fullPage: true });
  await page.getByRole("button", { name: "Create hook" }).click();
  await page.waitForURL(/\/console\/hooks\/[a-z0-9]+\?done=created$/);
  await page.getByRole("status").getByText("Created.").waitFor();

  // Its page: the key in both forms, rotated; a test event and what the endpoint answered;
  // an edit of its delivery settings.
  const before = await page.getByLabel(/^Signing key/).inputValue();
  assert.match(await page.getByLabel(/Standard Webhooks secret/).inputValue(), /^whsec_/);
  await page.getByLabel("The old key keeps signing for").selectOption("0");
  await page.getByRole("button", { name: "Rotate key" }).click();
  await page.getByRole("status").getByText(/rotated/).waitFor();
  const after = await page.getByLabel(/^Signing key/).inputValue();
  assert.notEqual(after, before);
  assert.equal(after.length, before.length);
  await page.getByLabel("Event", { exact: true }).selectOption("User.Created");
  await page.getByRole("button", { name: "Send test" }).click();
  await page.getByRole("status").getByText(/answered with a 2xx/).waitFor();
  await page.getByLabel(/Request timeout, ms/).fill("2500");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("status").getByText("Saved.").waitFor();
  assert.equal(await page.getByLabel(/Request timeout, ms/).inputValue(), "2500");
  assert.equal(await page.getByLabel(/Custom headers/).inputValue(), "x-from: console\n");
  await page.screenshot({ path: path.join(shots, "hook.png"), fullPage: true });

  await page.goto(`${base}/console/hooks`);
  const made = page.getByRole("row", { name: /From the console/ });
  await made.waitFor();
  assert.match(await made.innerText(), /User\.Created, Organization\.Created/);
  // A bad URL: the form again, with the API's reason and what was typed.
  await page.getByRole("link", { name: "New hook" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Bad one");
  await page.getByLabel("Endpoint URL").fill("ftp://example.com/x");
  await page.getByRole("group", { name: "User" }).getByLabel("User.Deleted").check();
  await page.getByRole("button", { name: "Create hook" }).click();
  await page.getByRole("alert").getByText(/http/).waitFor();
  assert.equal(await page.getByLabel("Name", { exact: true }).inputValue(), "Bad one");
  await page.goto(`${base}/console/hooks`);
  await page.screenshot({ path: path.join(shots, "hooks.png"), fullPage: true });

  // Deliveries appear without a reload while events flow.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Deliveries" }).click();
  await page.getByText("No deliveries match.").waitFor();
  const main = page.getByRole("navigation", { name: "Main" });
  assert.equal(await main.getByRole("link", { name: "Deliveries" }).getAttribute("aria-current"), "page");
  assert.equal(await main.getByRole("link", { name: "Hooks" }).getAttribute("aria-current"), null);
  await api("POST", "/events", { event: "User.Created", data: { id: "u-browser" } });
  const mine = page.getByRole("row", { name: /succeeded User\.Created From the console/ });
  await mine.waitFor({ timeout: 10000 });
  await page.getByRole("row", { name: /succeeded User\.Created test hook/ }).waitFor();
  await page.getByText(/^2 deliveries match/).waitFor();
  await page.screenshot({ path: path.join(shots, "deliveries.png"), fullPage: true });

  // One delivery: what it sent and its attempt; retried from the page.
  await mine.getByRole("link", { name: "User.Created" }).click();
  await page.getByRole("heading", { name: /^Delivery / }).waitFor();
  const first = page.getByRole("region", { name: "Attempt 1" });
  assert.match(await first.innerText(), /success/);
  assert.match(await first.innerText(), /Status 200/);
  assert.match(await page.locator("pre").first().innerText(), /u-browser/);
  await page.getByRole("button", { name: "Retry now" }).click();
  for (let i = 0; i < 50 && (await page.getByRole("region", { name: "Attempt 2" }).count()) === 0; i++) {
    await page.waitForTimeout(200);
    await page.reload();
  }
  assert.match(await page.getByRole("region", { name: "Attempt 2" }).innerText(), /success/);
  await page.screenshot({ path: path.join(shots, "delivery.png"), fullPage: true });
  const deliveryPage = new URL(page.url()).pathname;

  // An action: a script and a variable typed, dry-run with its sample event, then saved.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Actions" }).click();
  await page.getByRole("link", { name: "action.postSignIn" }).click();
  await page.getByLabel(/^Script/).fill(
    'const runAction = async ({ event, environmentVariables }) => {\n' +
    '  console.log("hello", event.user.username, environmentVariables.GREETING);\n' +
    '  return { action: "updateUser", user: { name: environmentVariables.GREETING } };\n};');
  await page.getByLabel(/^Environment variables/).fill("GREETING=howdy");
  await page.getByRole("button", { name: "Run test" }).click();
  const run = page.getByRole("region", { name: "Test run" });
  await run.waitFor();
  assert.match(await run.innerText(), /hello alice howdy/);
  assert.match(await run.innerText(), /"name": "howdy"/);
  await page.screenshot({ path: path.join(shots, "action.png"), fullPage: true });
  assert.equal((await api("GET", "/configs/actions"))["action.postSignIn"], null, "a test saves nothing");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("status").getByText("Saved.").waitFor();
  const saved = await api("GET", "/configs/actions/action.postSignIn");
  assert.equal(saved.environmentVariables.GREETING, "howdy");
  assert.match(saved.script, /hello/);

  // The events page: the published event, and where it went.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Events" }).click();
  await page.getByRole("row", { name: /User\.Created .* 2 hooks: 2 succeeded/ }).waitFor();
  await page.screenshot({ path: path.join(shots, "events.png"), fullPage: true });
  await page.getByRole("row", { name: /User\.Created .* 2 hooks/ }).getByRole("link").click();
  await page.getByRole("heading", { name: /^User\.Created/ }).waitFor();
  assert.match(await page.locator("pre").innerText(), /u-browser/);
  const eventPage = new URL(page.url()).pathname;

  // Keyboard only: a hook made by tabbing through the form, every focus visible.
  await page.goto(`${base}/console/hooks/new`);
  await tabTo((el) => el.id === "name");
  await page.keyboard.type("Keyboard hook");
  await page.keyboard.press("Tab");
  await page.keyboard.type(receiverUrl);
  await tabTo((el) => el.type === "checkbox" && el.value === "User.Deleted");
  await page.keyboard.press("Space");
  await tabTo((el) => el.tagName === "BUTTON" && el.textContent === "Create hook");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/console\/hooks\/[a-z0-9]+\?done=created$/);
  const keyed = (await api("GET", "/hooks")).find((h) => h.name === "Keyboard hook");
  assert.deepEqual(keyed.events, ["User.Deleted"]);

  // Readable at 320 px: nothing wider than the window but the table's own scroller.
  // Every kind of page, the one of the hook just made included, and a directory with rows.
  // (A role: no hook here takes Role.Created, so the receiver's count stays.)
  await api("POST", "/roles", { name: "a-rather-long-role-name-for-a-narrow-screen",
    description: "Someone with a rather long description of what this role is for" });
  await page.setViewportSize({ width: 320, height: 640 });
  const here = new URL(page.url()).pathname;
  for (const route of [here, "/console/hooks", "/console/hooks/new", "/console/deliveries",
    "/console/events", "/console/actions", "/console/actions/action.postSignIn",
    "/console/users", "/console/roles", deliveryPage, eventPage,
    `/console/deliveries?hookId=${keyed.id}&since=2020-01-01T00:00`]) {
    await page.goto(`${base}${route}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${route} is ${overflow}px wider than 320px`);
  }
  await page.goto(`${base}/console/hooks`);
  await page.screenshot({ path: path.join(shots, "hooks-320.png"), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  // The README's two (docs/console-*.png are copies of these).
  await page.goto(`${base}/console/hooks`);
  await page.screenshot({ path: path.join(shots, "readme-hooks.png") });
  await page.goto(`${base}/console/deliveries`);
  await page.screenshot({ path: path.join(shots, "readme-deliveries.png") });

  // Sign out: back to the sign-in, and the console is closed to this browser again.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/console\/sign-in\?signedOut=1$/);
  await page.getByRole("status").getByText("Signed out.").waitFor();
  await page.goto(`${base}/console/hooks`);
  assert.match(page.url(), /\/console\/sign-in\?next=/);
  console.log("console ok");
} finally {
  await browser.close();
}
