// The heatmap's panel: hovering a cell shows its top-k and statistics,
// clicking pins it (click again or Escape to unpin), arrow keys move the
// pinned cell. Everything comes from the embedded lens document; tokens are
// inserted as text, never as markup.
(function () {
  'use strict';
  var doc = JSON.parse(document.getElementById('lens-data').textContent);
  var svg = document.getElementById('lens');
  var panel = document.getElementById('panel');
  var cursors = svg.querySelectorAll('rect.cursor');
  var pinned = null;

  // Numbers that were not finite are null in the document: shown as "—".
  function pct(p) {
    if (p === null || p === undefined) return '—';
    if (p >= 0.0995) return (100 * p).toFixed(1) + '%';
    if (p >= 0.000995) return (100 * p).toFixed(2) + '%';
    if (p === 0) return '0%';
    return p.toExponential(0).replace('e-', 'e-0').replace(/e-0(\d\d)/, 'e-$1');
  }
  // A rank of −1 (or none) could not be computed: the row was not finite.
  function rank(r) {
    return r === null || r === undefined || r < 0 ? '—' : String(r);
  }
  function nats(x) {
    return x === null || x === undefined ? '—' : x.toFixed(3) + ' nats';
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function stat(dl, name, value, cls) {
    dl.appendChild(el('dt', null, name));
    dl.appendChild(el('dd', cls || null, value));
  }
  function cellRect(r, p) {
    return svg.querySelector('rect.cell[data-r="' + r + '"][data-p="' + p + '"]');
  }

  function show(r, p) {
    var c = doc.cells[r][p], row = doc.rows[r], tok = doc.tokens[p];
    var rect = cellRect(r, p);
    if (rect) {
      cursors.forEach(function (cur) {
        ['x', 'y', 'width', 'height'].forEach(function (a) { cur.setAttribute(a, rect.getAttribute(a)); });
        cur.setAttribute('visibility', 'visible');
      });
    }
    var out = r === doc.rows.length - 1 ? ' (output)' : '';
    var parts = [el('h2', 'where', 'row ' + row.name + out + ' · position ' + p)];
    var toks = el('p', 'tokens');
    function labelled(name, cls, text) {
      var s = el('span');
      s.appendChild(document.createTextNode(name + ' '));
      s.appendChild(el('span', 'tok ' + cls, text));
      toks.appendChild(s);
    }
    labelled('input', 'input', tok.display);
    if (p + 1 < doc.tokens.length) labelled('next', 'next', doc.tokens[p + 1].display);
    parts.push(toks);
    var table = el('table', 'top');
    (c.top || []).forEach(function (t, i) {
      var tr = el('tr');
      tr.appendChild(el('td', 'n', String(i + 1)));
      tr.appendChild(el('td', 'tok', t.display));
      var bar = el('td', 'bar'), fill = el('div');
      fill.style.width = (100 * (t.prob || 0)).toFixed(1) + '%';
      bar.appendChild(fill);
      tr.appendChild(bar);
      tr.appendChild(el('td', 'prob', pct(t.prob)));
      table.appendChild(tr);
    });
    parts.push(table);
    var dl = el('dl', 'stats');
    stat(dl, 'entropy', nats(c.entropy), 'entropy');
    stat(dl, 'KL(P_final‖P_row)', nats(c.kl_to_final), 'kl');
    var final = doc.final_top1[p];
    stat(dl, 'final top-1', final.id < 0 ? '—' : final.display, 'tok final');
    stat(dl, '· rank, p here', rank(c.final_top1_rank) + ' · ' + pct(c.final_top1_prob), 'final-here');
    if (doc.target) {
      stat(dl, 'target', doc.target.display, 'tok target');
      stat(dl, '· rank, p here', rank(c.target_rank) + ' · ' + pct(c.target_prob), 'target-here');
    }
    if (c.nonfinite) stat(dl, 'not finite', c.nonfinite, 'nonfinite');
    parts.push(dl);
    if (pinned) parts.push(el('p', 'hint', 'pinned: arrows move, Esc or click unpins'));
    panel.replaceChildren.apply(panel, parts);
    panel.dataset.r = r;
    panel.dataset.p = p;
  }

  function target(e) {
    var t = e.target;
    return t && t.classList && t.classList.contains('cell') ? [+t.dataset.r, +t.dataset.p] : null;
  }
  svg.addEventListener('mouseover', function (e) {
    var c = target(e);
    if (c && !pinned) show(c[0], c[1]);
  });
  svg.addEventListener('click', function (e) {
    var c = target(e);
    if (!c) return;
    pinned = pinned && pinned[0] === c[0] && pinned[1] === c[1] ? null : c;
    show(c[0], c[1]);
  });
  document.addEventListener('keydown', function (e) {
    if (!pinned) return;
    var r = pinned[0], p = pinned[1];
    switch (e.key) {
      case 'ArrowUp': r = Math.min(r + 1, doc.rows.length - 1); break;
      case 'ArrowDown': r = Math.max(r - 1, 0); break;
      case 'ArrowLeft': p = Math.max(p - 1, 0); break;
      case 'ArrowRight': p = Math.min(p + 1, doc.tokens.length - 1); break;
      case 'Escape': pinned = null; show(r, p); return;
      default: return;
    }
    e.preventDefault();
    pinned = [r, p];
    show(r, p);
  });
})();
