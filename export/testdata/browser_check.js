// Drives headless Chromium over the HTML figures written by
// TestExampleFiles; see browser_test.sh. Usage: node browser_check.js DIR
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const dir = path.resolve(process.argv[2]);
const exe = process.env.CHROMIUM || '/usr/bin/chromium';
const args = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

// pct mirrors display.Prob.
function pct(p) {
  if (p >= 0.0995) return (100 * p).toFixed(1) + '%';
  if (p >= 0.000995) return (100 * p).toFixed(2) + '%';
  if (p === 0) return '0%';
  const [m, e] = p.toExponential(0).split('e');
  const n = Math.abs(+e);
  return m + 'e' + (+e < 0 ? '-' : '+') + (n < 10 ? '0' : '') + n;
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function checkPage(browser, name) {
  const doc = JSON.parse(fs.readFileSync(path.join(dir, name + '.json'), 'utf8'));
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:')) return route.continue();
    problems.push('network request: ' + url);
    return route.abort();
  });
  await page.goto('file://' + path.join(dir, name + '.html'));

  const nRows = doc.rows.length, nTok = doc.tokens.length;
  check(await page.locator('rect.cell').count() === nRows * nTok, name + ': cell count');
  const probes = [[nRows - 1, nTok - 1], [0, 0], [Math.floor(nRows / 2), Math.floor(nTok / 2)]];
  for (const [r, p] of probes) {
    await page.locator(`rect.cell[data-r="${r}"][data-p="${p}"]`).hover();
    const where = await page.locator('#panel .where').textContent();
    check(where.includes('row ' + doc.rows[r].name) && where.includes('position ' + p),
      `${name}: panel header "${where}" for cell (${r},${p})`);
    const c = doc.cells[r][p];
    const tok = await page.locator('#panel table.top tr:first-child td.tok').textContent();
    const prob = await page.locator('#panel table.top tr:first-child td.prob').textContent();
    check(tok === c.top[0].display, `${name}: cell (${r},${p}) panel top-1 "${tok}", document "${c.top[0].display}"`);
    check(prob === pct(c.top[0].prob), `${name}: cell (${r},${p}) panel prob ${prob}, document ${pct(c.top[0].prob)}`);
    check(await page.locator('#panel table.top tr').count() === c.top.length, `${name}: top-k length`);
    const ent = await page.locator('#panel dd.entropy').textContent();
    check(ent === c.entropy.toFixed(3) + ' nats', `${name}: entropy "${ent}"`);
    console.log(`${name}: cell (${doc.rows[r].name}, ${p}) top-1 ${tok} ${prob}: ok`);
  }
  // Pin the middle cell, move down a row with the keyboard, hover elsewhere.
  const [r, p] = probes[2];
  await page.locator(`rect.cell[data-r="${r}"][data-p="${p}"]`).click();
  await page.keyboard.press('ArrowDown');
  await page.locator(`rect.cell[data-r="${nRows - 1}"][data-p="0"]`).hover();
  const pinned = await page.locator('#panel').evaluate((e) => [+e.dataset.r, +e.dataset.p]);
  check(pinned[0] === r - 1 && pinned[1] === p, `${name}: pinned cell ${pinned}, want ${[r - 1, p]}`);
  await page.screenshot({ path: path.join(dir, name + '-html.png'), fullPage: true });
  check(problems.length === 0, name + ': ' + problems.join('; '));
  await page.close();

  // The standalone SVG, as a browser draws it. A full-page screenshot of an
  // SVG document hangs (it has no body to measure), so the viewport takes
  // the figure's size instead.
  const file = path.join(dir, name + '.svg');
  const size = fs.readFileSync(file, 'utf8').match(/<svg[^>]* width="([\d.]+)" height="([\d.]+)"/);
  check(size, name + '.svg: no width and height');
  const svg = await browser.newPage({ viewport: { width: Math.ceil(+size[1]), height: Math.ceil(+size[2]) } });
  await svg.goto('file://' + file);
  await svg.screenshot({ path: path.join(dir, name + '-chromium.png') });
  await svg.close();
}

(async () => {
  const browser = await chromium.launch({ executablePath: exe, headless: true, args });
  try {
    for (const name of ['example', 'tiny']) await checkPage(browser, name);
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error('browser check failed:', e.message);
  process.exit(1);
});
