"""The board page's inline style sheet and its one script (sorting, filtering, #sort= links).

Both are pinned by their sha256 in the page's Content-Security-Policy (:mod:`.render`), so they
are constants: any change here changes the hashes, and nothing else can run on the page.
"""

from __future__ import annotations

__all__ = ["CSS", "JS"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5rem auto;max-width:1400px;padding:0 1rem;color:#222}
h2{margin-top:2rem;border-bottom:2px solid #ddd}h3{margin:1.2rem 0 .3rem}
table{border-collapse:collapse;width:100%;margin:.3rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}th button{all:unset;cursor:pointer;font-weight:bold}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.nw{white-space:nowrap}
td.name{min-width:12rem}.wrap{overflow-x:auto}th small{font-weight:normal;display:block}
tr.reported{background:#f6f6fb;font-style:italic}.sub{color:#555;font-size:.8rem}
.note{color:#444;font-size:.85rem}ol.notes{font-size:.82rem;color:#333;list-style:none;padding-left:.5rem}
.filter{margin:.5rem 0 1rem}.filter input{font-size:1rem;padding:2px 6px;width:24rem;max-width:90%}
.count{color:#666;font-size:.8rem}svg{max-width:100%;height:auto}
table.overview td.num{white-space:normal;min-width:6.5rem}table.overview td.name{min-width:9rem}
.sub.reported{font-style:italic}tr.baseline{background:#f6f6f6}
"""

JS = """
(function () {
  "use strict";
  function value(cell, type) {
    var v = cell.getAttribute("data-v");
    if (type === "num") { var x = parseFloat(v); return isNaN(x) ? null : x; }
    return (v === null ? cell.textContent : v).trim().toLowerCase();
  }
  function sort(th) {
    var table = th.closest("table"), body = table.tBodies[0], type = th.getAttribute("data-type");
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var was = th.getAttribute("aria-sort");
    var dir = was === "descending" ? "ascending" : was === "ascending" ? "descending"
      : (type === "num" ? "descending" : "ascending");
    var rows = Array.prototype.map.call(body.rows, function (r, i) { return [value(r.cells[col], type), i, r]; });
    rows.sort(function (a, b) {
      if (a[0] === null || b[0] === null) { return (a[0] === null) - (b[0] === null) || a[1] - b[1]; }
      var c = a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
      return (dir === "ascending" ? c : -c) || a[1] - b[1];
    });
    rows.forEach(function (r) { body.appendChild(r[2]); });
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
  }
  function filter(text) {
    var words = text.toLowerCase().split(/\\s+/).filter(Boolean);
    document.querySelectorAll("table.board").forEach(function (t) {
      var shown = 0, rows = t.tBodies[0].rows;
      Array.prototype.forEach.call(rows, function (r) {
        var s = r.textContent.toLowerCase();
        r.hidden = !words.every(function (w) { return s.indexOf(w) >= 0; });
        shown += r.hidden ? 0 : 1;
      });
      var c = document.getElementById(t.id + "-count");
      if (c) { c.textContent = shown === rows.length ? "" : shown + " of " + rows.length + " rows shown"; }
    });
  }
  document.querySelectorAll("table.board th[data-key] button").forEach(function (b) {
    b.addEventListener("click", function () { sort(b.parentNode); });
  });
  var input = document.getElementById("filter");
  input.addEventListener("input", function () { filter(input.value); });
  // #sort=KEY[:asc|:desc]&filter=TEXT: a link that opens the page sorted and filtered
  function fromHash() {
    var p = new URLSearchParams(location.hash.slice(1)), s = p.get("sort"), f = p.get("filter");
    if (f !== null) { input.value = f; filter(f); }
    if (s) {
      var parts = s.split(":"), want = {asc: "ascending", desc: "descending"}[parts[1]];
      document.querySelectorAll("table.board th[data-key]").forEach(function (th) {
        if (th.getAttribute("data-key") !== parts[0]) { return; }
        var b = th.querySelector("button");
        for (var i = 0; i < 3; i++) {
          b.click();
          if (!want || th.getAttribute("aria-sort") === want) { break; }
        }
      });
    }
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
"""
