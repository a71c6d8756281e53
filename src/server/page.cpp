#include "server/page.hpp"

#include "server/render.hpp"

#include <iterator>

namespace server {

const std::string_view page_style = R"CSS(
:root { color-scheme: light dark; --line: #8884; --muted: #888; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; }
header { display: flex; gap: 1em; align-items: baseline; padding: .6em 1em; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.2em; margin: 0; }
#status { color: var(--muted); margin-left: auto; }
#status.error { color: #d33; }
#filter { font: inherit; padding: .2em .4em; min-width: 16em; }
#scroller { height: calc(100vh - 3.2em); overflow: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 0 .8em; height: 28px; white-space: nowrap; border-bottom: 1px solid var(--line); text-align: left; }
th { position: sticky; top: 0; background: Canvas; cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " \25B2"; }
th[aria-sort=descending]::after { content: " \25BC"; }
td.name { max-width: 40em; overflow: hidden; text-overflow: ellipsis; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td.spacer { padding: 0; border: 0; }
svg.spark { width: 120px; height: 20px; vertical-align: middle; }
svg.spark polyline { fill: none; stroke: currentColor; stroke-width: 1.2; }
)CSS";

// Everything the script puts in the document goes through textContent or attribute setters:
// names are never parsed as markup.
const std::string_view page_script = R"JS(
(() => {
  'use strict';
  const REFRESH_MS = 2000, HISTORY = 60, ROW_HEIGHT = 28, OVERSCAN = 8;
  const scroller = document.getElementById('scroller');
  const table = document.getElementById('metrics');
  const filter = document.getElementById('filter');
  const status = document.getElementById('status');
  const columns = [
    {key: 'id', title: 'Name'}, {key: 'kind', title: 'Type'}, {key: 'value', title: 'Value', num: true},
    {key: 'rate', title: 'Rate /s', num: true}, {key: 'updated', title: 'Updated', num: true},
    {key: null, title: 'Trend'}];
  const metrics = new Map();  // kind + NUL + id -> entry
  let view = [], sortKey = 'id', sortDir = 1, lastRefresh = 0, scheduled = false;

  // Counter totals are int64: keep the exact text of every number (JSON.parse source access),
  // and a Number for sorting, rates and sparklines.
  const parse = (text) => JSON.parse(text, function (key, value, context) {
    if ((key === 'value' || key === 'delta') && context && typeof context.source === 'string')
      return {text: context.source, number: value};
    return value;
  });
  const numberOf = (v) => typeof v === 'object' && v !== null ? v : {text: String(v), number: Number(v)};

  // As the server writes them (render.cpp's write_age): whole units, rounded down.
  function age(updated, now) {
    if (!updated) return '';
    const s = Math.floor(Math.max(0, now - updated) / 1000);
    if (s < 120) return s + 's ago';
    if (s < 7200) return Math.floor(s / 60) + 'm ago';
    if (s < 172800) return Math.floor(s / 3600) + 'h ago';
    return Math.floor(s / 86400) + 'd ago';
  }

  function merge(list, now) {
    const seen = new Set();
    for (const m of list) {
      const key = m.type + '\u0000' + m.id;
      const v = numberOf(m.type === 'counter' ? m.delta : m.value);
      seen.add(key);
      let e = metrics.get(key);
      if (!e) {
        e = {id: m.id, kind: m.type, history: [], rate: null, at: now};
        metrics.set(key, e);
      } else if (m.type === 'counter' && now > e.at) {
        e.rate = (v.number - e.value) / ((now - e.at) / 1000);
      }
      e.value = v.number; e.text = v.text; e.updated = m.updated_at || 0; e.at = now;
      e.history.push(v.number);
      if (e.history.length > HISTORY) e.history.shift();
    }
    for (const key of metrics.keys()) if (!seen.has(key)) metrics.delete(key);
  }

  function compare(a, b) {
    let x = a[sortKey], y = b[sortKey];
    if (sortKey === 'updated') { x = -x; y = -y; }  // ascending age = newest first
    if (x === y) return a.id < b.id ? -1 : a.id > b.id ? 1 : a.kind < b.kind ? -1 : 1;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * sortDir;
  }

  function rebuildView() {
    const needle = filter.value.trim().toLowerCase();
    view = [];
    for (const e of metrics.values()) if (!needle || e.id.toLowerCase().includes(needle)) view.push(e);
    view.sort(compare);
  }

  function sparkline(history) {
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', '0 0 120 20');
    if (history.length > 1) {
      let lo = Infinity, hi = -Infinity;
      for (const v of history) { if (v < lo) lo = v; if (v > hi) hi = v; }
      const step = 120 / (history.length - 1);  // the values seen so far, full width
      const y = (v) => hi === lo ? 10 : 18 - 16 * (v - lo) / (hi - lo);  // a steady value: mid-height
      const points = history.map((v, i) => (i * step).toFixed(1) + ',' + y(v).toFixed(1));
      const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
      line.setAttribute('points', points.join(' '));
      svg.appendChild(line);
    }
    return svg;
  }

  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function spacer(body, height) {
    const td = body.insertRow().insertCell();
    td.colSpan = columns.length;
    td.className = 'spacer';
    td.style.height = height + 'px';
  }

  // Only the rows in view (plus a margin) exist in the document; spacers keep the scroll height.
  function render() {
    scheduled = false;
    const now = Date.now();
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const count = Math.ceil(scroller.clientHeight / ROW_HEIGHT) + 2 * OVERSCAN;
    const last = Math.min(view.length, first + count);
    const body = document.createElement('tbody');
    if (first > 0) spacer(body, first * ROW_HEIGHT);
    for (let i = first; i < last; ++i) {
      const e = view[i], row = body.insertRow();
      row.dataset.kind = e.kind;
      cell(row, e.id, 'name').title = e.id;
      cell(row, e.kind);
      cell(row, e.text, 'num');
      cell(row, e.kind === 'counter' && e.rate !== null ? e.rate.toFixed(2) : '', 'num');
      cell(row, age(e.updated, now), 'num');
      row.insertCell().appendChild(sparkline(e.history));
    }
    if (last < view.length) spacer(body, (view.length - last) * ROW_HEIGHT);
    table.replaceChild(body, table.tBodies[0]);
    status.textContent = (view.length === metrics.size ? view.length : view.length + ' of ' + metrics.size) +
      ' metrics \u00b7 refreshed ' + new Date(lastRefresh).toLocaleTimeString();
  }

  function schedule() {
    if (!scheduled) { scheduled = true; requestAnimationFrame(render); }
  }

  function header() {
    const head = document.createElement('thead'), row = head.insertRow();
    for (const c of columns) {
      const th = document.createElement('th');
      th.textContent = c.title;
      if (c.num) th.className = 'num';
      if (c.key) {
        th.dataset.key = c.key;
        th.tabIndex = 0;
        if (c.key === sortKey) th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending');
        const sort = () => {
          sortDir = sortKey === c.key ? -sortDir : 1;
          sortKey = c.key;
          header(); rebuildView(); schedule();
        };
        th.addEventListener('click', sort);
        th.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') sort(); });
      }
      row.appendChild(th);
    }
    table.replaceChild(head, table.tHead);
  }

  async function refresh() {
    if (document.hidden) return;
    try {
      const response = await fetch('/values/', {headers: {Accept: 'application/json'}, cache: 'no-store'});
      if (!response.ok) throw new Error('HTTP ' + response.status);
      const now = Date.now();
      merge(parse(await response.text()), now);
      lastRefresh = now;
      status.classList.remove('error');
      rebuildView();
      render();
    } catch (err) {
      status.textContent = 'refresh failed (' + err.message + '); retrying';
      status.classList.add('error');
    }
  }

  filter.hidden = false;
  filter.addEventListener('input', () => { rebuildView(); scroller.scrollTop = 0; schedule(); });
  scroller.addEventListener('scroll', schedule, {passive: true});
  window.addEventListener('resize', schedule);
  document.addEventListener('visibilitychange', refresh);
  header();
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
)JS";

void write_page(fmt::memory_buffer& out, std::span<const core::OwnedMetric> metrics, std::int64_t now_ms)
{
    out.append(std::string_view{
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Metrics</title>\n<style>"});
    out.append(page_style);
    out.append(std::string_view{
        "</style>\n</head>\n<body>\n<header><h1>Metrics</h1>"
        "<input id=\"filter\" type=\"search\" placeholder=\"Filter by name\" aria-label=\"Filter by name\" hidden>"});
    fmt::format_to(std::back_inserter(out), "<span id=\"status\">{} metrics</span></header>\n", metrics.size());
    out.append(std::string_view{
        "<main id=\"scroller\">\n<table id=\"metrics\">\n<thead><tr><th>Name</th><th>Type</th>"
        "<th class=\"num\">Value</th><th class=\"num\">Updated</th></tr></thead>\n<tbody>\n"});
    for (const auto& m : metrics) {
        out.append(std::string_view{"<tr><td class=\"name\">"});
        escape_html(out, m.id);
        out.append(std::string_view{"</td><td>"});
        out.append(core::to_string(m.kind));
        out.append(std::string_view{"</td><td class=\"num\">"});
        write_value_text(out, m.view());
        out.append(std::string_view{"</td><td class=\"num\">"});
        if (m.updated_at > 0) {  // 0: unknown
            out.append(std::string_view{"<time datetime=\""});
            write_utc(out, m.updated_at);
            out.append(std::string_view{"\">"});
            write_age(out, now_ms - m.updated_at);
            out.append(std::string_view{"</time>"});
        }
        out.append(std::string_view{"</td></tr>\n"});
    }
    out.append(std::string_view{"</tbody>\n</table>\n</main>\n<script>"});
    out.append(page_script);
    out.append(std::string_view{"</script>\n</body>\n</html>\n"});
}

}  // namespace server
