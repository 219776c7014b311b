// Load HTML report pages in headless Debian Chromium, run axe-core over each, record every request a page
// makes (any that is not the page's own file is aborted and listed) and save a screenshot of each.
// Prints one JSON line: a list of {page, title, violations, requests, consoleErrors, passes, axe}.
// Usage: node check_report.mjs <chromium> <screenshot-dir> <page.html>...
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const [executable, shots, ...reports] = process.argv.slice(2);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const profile = mkdtempSync(join(tmpdir(), "impactstudy-chromium-"));

const context = await chromium.launchPersistentContext(profile, {
  executablePath: executable,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-sync"],
  viewport: { width: 1280, height: 900 },
  bypassCSP: true, // so axe can be injected; the page's own CSP is checked by the requests list
});
const out = [];
try {
  for (const [index, report] of reports.entries()) {
    const requests = [];
    const consoleErrors = [];
    const page = await context.newPage();
    await page.route("**/*", (route) => {
      const url = route.request().url();
      requests.push(url);
      return url.startsWith("file:") || url.startsWith("data:") ? route.continue() : route.abort();
    });
    page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(msg.text()); });
    await page.goto(pathToFileURL(report).href, { waitUntil: "load" });
    const title = await page.title();
    await page.addScriptTag({ content: axeSource });
    const results = await page.evaluate(async () => await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] } }));
    const screenshot = join(shots, `page-${index}.png`);
    await page.screenshot({ path: screenshot, fullPage: false });
    await page.close();
    const violations = results.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
    out.push({ page: report, title, violations, requests, consoleErrors, screenshot,
               passes: results.passes.length, axe: results.testEngine.version });
  }
  console.log(JSON.stringify(out));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
