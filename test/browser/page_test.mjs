// The page at / of a running metrics-server, in Debian's Chromium (headless) through
// puppeteer-core. Usage: node page_test.mjs BASE_URL SCREENSHOT_DIR
// The server must be empty and fresh. Prints one line per case ("ok NAME" or "not ok NAME:
// why") and exits 1 when any case failed. test/integration/test_page.py runs it.
import puppeteer from 'puppeteer-core';
import fs from 'node:fs';
import path from 'node:path';

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node page_test.mjs BASE_URL SCREENSHOT_DIR');
  process.exit(2);
}
fs.mkdirSync(shots, {recursive: true});

// `<img src=x onerror=alert(1)>` itself cannot be stored: a name holds no space or '/', which
// an HTML attribute or end tag needs (the server answers 400, checked below). This one makes an
// element, an entity and a script start if it is ever parsed as markup.
const HOSTILE = '<img>"\'&amp;<script>alert(1)';
const results = [];

async function post(pathname, body) {
  const response = await fetch(base + pathname, {
    method: 'POST', body, headers: body ? {'Content-Type': 'application/json'} : {},
  });
  if (response.status !== 200) throw new Error(`POST ${pathname}: ${response.status}`);
}

async function check(name, run) {
  try {
    await run();
    results.push(true);
    console.log(`ok ${name}`);
  } catch (err) {
    results.push(false);
    console.log(`not ok ${name}: ${(err && err.message || String(err)).split('\n')[0]}`);
  }
}

function expect(condition, what) {
  if (!condition) throw new Error(what);
}

/** The rows the page shows: [name, type, value, rate, age] per row, spacers left out. */
const rows = (page) => page.$$eval('#metrics tbody tr', (trs) => trs
  .filter((tr) => !tr.querySelector('td.spacer'))
  .map((tr) => Array.from(tr.cells).slice(0, 5).map((td) => td.textContent)));

/** Waits until the rows show `names` in this order (rendering happens on the next frame). */
async function waitForOrder(page, names) {
  try {
    await page.waitForFunction((expected) => JSON.stringify(Array.from(document.querySelectorAll('#metrics td.name'))
      .map((td) => td.textContent)) === expected, {timeout: 5000}, JSON.stringify(names));
  } catch {
    throw new Error('rows ' + JSON.stringify((await rows(page)).map((r) => r[0])) + ', expected ' + JSON.stringify(names));
  }
}

const refreshed = (page) => page.waitForFunction(
  () => document.getElementById('status').textContent.includes('refreshed'), {timeout: 10000});

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  await post('/update/gauge/alpha/1.5');
  await post('/update/counter/hits/5');
  await post('/update/', JSON.stringify({id: HOSTILE, type: 'gauge', value: 10}));
  const refused = await fetch(base + '/update/', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({id: '<img src=x onerror=alert(1)>', type: 'gauge', value: 1})});

  const page = await browser.newPage();
  await page.setViewport({width: 1000, height: 600});
  const dialogs = [];
  page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  await page.goto(base + '/', {waitUntil: 'load'});
  await refreshed(page);

  await check('rows: every metric with its type and value, sorted by name', async () => {
    const shown = await rows(page);
    expect(shown.length === 3, `${shown.length} rows`);
    expect(JSON.stringify(shown.map((r) => r.slice(0, 3))) === JSON.stringify([
      [HOSTILE, 'gauge', '10'], ['alpha', 'gauge', '1.5'], ['hits', 'counter', '5']]), JSON.stringify(shown));
    expect(shown.every((r) => /^\d+s ago$/.test(r[4])), 'ages: ' + shown.map((r) => r[4]));
  });

  await check('a hostile name is text: no element made, no script run', async () => {
    expect(refused.status === 400, 'a name with spaces was accepted: ' + refused.status);
    expect(await page.$$eval('img', (imgs) => imgs.length) === 0, 'an img element exists');
    expect(dialogs.length === 0, 'a dialog opened: ' + dialogs);
    const names = await page.$$eval('#metrics td.name', (tds) => tds.map((td) => td.textContent));
    expect(names.includes(HOSTILE), 'name not shown as text');
  });

  await check('the filter box keeps matching names only', async () => {
    await page.type('#filter', 'HIT');
    await page.waitForFunction(() => document.querySelectorAll('#metrics tbody tr').length === 1);
    const shown = await rows(page);
    expect(shown.length === 1 && shown[0][0] === 'hits', JSON.stringify(shown));
    await page.click('#filter', {clickCount: 3});
    await page.keyboard.press('Backspace');
    await page.waitForFunction(() => document.querySelectorAll('#metrics tbody tr').length === 3);
  });

  await check('clicking a header sorts by it, again reverses', async () => {
    await page.click('th[data-key=value]');
    await waitForOrder(page, ['alpha', 'hits', HOSTILE]);
    expect(await page.$eval('th[data-key=value]', (th) => th.getAttribute('aria-sort')) === 'ascending', 'aria-sort');
    await page.click('th[data-key=value]');
    await waitForOrder(page, [HOSTILE, 'hits', 'alpha']);
    expect(await page.$eval('th[data-key=value]', (th) => th.getAttribute('aria-sort')) === 'descending', 'aria-sort');
    await page.click('th[data-key=kind]');
    await waitForOrder(page, ['hits', HOSTILE, 'alpha']);  // counter before gauge, then by name
    await page.click('th[data-key=id]');
    await waitForOrder(page, [HOSTILE, 'alpha', 'hits']);
  });

  await check('a new value appears without a reload, counters get a rate and a sparkline', async () => {
    await page.evaluate(() => { window.stillTheSamePage = true; });
    await post('/update/gauge/alpha/99.25');
    await post('/update/counter/hits/10');
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#metrics tbody tr'))
      .some((tr) => tr.cells[0].textContent === 'alpha' && tr.cells[2].textContent === '99.25'), {timeout: 10000});
    expect(await page.evaluate(() => window.stillTheSamePage === true), 'the page was reloaded');
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#metrics tbody tr'))
      .some((tr) => tr.cells[0].textContent === 'hits' && tr.cells[2].textContent === '15' && tr.cells[3].textContent !== ''),
    {timeout: 10000});
    const points = await page.$$eval('#metrics tbody tr', (trs) => trs
      .filter((tr) => tr.cells[0].textContent === 'alpha')
      .map((tr) => tr.querySelector('polyline')?.getAttribute('points') || ''));
    expect(points.length === 1 && points[0].split(' ').length >= 2, 'sparkline: ' + points);
    await page.screenshot({path: path.join(shots, 'page.png')});
  });

  await check('without JavaScript the server-rendered table stays', async () => {
    const plain = await browser.newPage();
    await plain.setJavaScriptEnabled(false);
    await plain.goto(base + '/', {waitUntil: 'load'});
    const shown = await plain.$$eval('#metrics tbody tr', (trs) => trs.map((tr) => Array.from(tr.cells).map((td) => td.textContent)));
    expect(shown.length === 3, `${shown.length} rows`);
    expect(shown[1][0] === 'alpha' && shown[1][2] === '99.25' && /^\d+s ago$/.test(shown[1][3]), JSON.stringify(shown[1]));
    expect(await plain.$eval('#filter', (f) => f.hidden), 'the filter shows without a script to run it');
    await plain.screenshot({path: path.join(shots, 'page-no-javascript.png')});
    await plain.close();
  });

  await check('10,000 metrics: only the rows in view are in the document, scrolling reaches the end', async () => {
    const batch = [];
    for (let i = 0; i < 10000; ++i) batch.push({id: 'load_' + String(i).padStart(5, '0'), type: 'gauge', value: i});
    await post('/updates/', JSON.stringify(batch));
    const started = Date.now();
    await page.reload({waitUntil: 'load'});
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('10003 metrics'),
      {timeout: 20000});
    const took = Date.now() - started;
    const inDocument = await page.$$eval('#metrics tbody tr', (trs) => trs.length);
    expect(inDocument < 100, `${inDocument} rows in the document`);
    await page.$eval('#scroller', (s) => { s.scrollTop = s.scrollHeight; });
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#metrics td.name'))
      .some((td) => td.textContent === 'load_09999'), {timeout: 5000});
    console.log(`# 10,003 metrics: page loaded and rendered in ${took} ms, ${inDocument} rows in the document`);
    await page.screenshot({path: path.join(shots, 'page-10000.png')});
  });
} finally {
  await browser.close();
}
const failed = results.filter((r) => !r).length;
console.log(`browser: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
