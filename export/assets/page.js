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
  // A comparison's figure has a column per position of the longer prompt,
  // right-aligned; its cells carry data-x, the column.
  var cmp = doc.compare && svg.querySelector('rect.cell[data-x]') ? doc.compare : null;
  var columns = cmp ? Math.max(doc.tokens.length, cmp.b.tokens.length) : doc.tokens.length;
  var key = cmp ? 'data-x' : 'data-p';
  function cellRect(r, p) {
    return svg.querySelector('rect.cell[data-r="' + r + '"][' + key + '="' + p + '"]');
  }
  function moveCursor(r, p) {
    var rect = cellRect(r, p);
    if (!rect) return;
    cursors.forEach(function (cur) {
      ['x', 'y', 'width', 'height'].forEach(function (a) { cur.setAttribute(a, rect.getAttribute(a)); });
      cur.setAttribute('visibility', 'visible');
    });
  }
  function topTable(top, other) {
    var table = el('table', 'top');
    (top || []).forEach(function (t, i) {
      var tr = el('tr');
      tr.appendChild(el('td', 'n', String(i + 1)));
      tr.appendChild(el('td', 'tok', t.display));
      var bar = el('td', 'bar'), fill = el('div');
      fill.style.width = (100 * (t.prob || 0)).toFixed(1) + '%';
      bar.appendChild(fill);
      tr.appendChild(bar);
      tr.appendChild(el('td', 'prob', pct(t.prob)));
      if (other) tr.appendChild(el('td', 'delta', delta(t, other)));
      table.appendChild(tr);
    });
    return table;
  }
  // The change of a token's probability from the other run's top-k, where
  // it is there.
  function delta(t, other) {
    for (var i = 0; i < other.length; i++) {
      if (other[i].id === t.id && t.prob !== null && other[i].prob !== null) {
        var d = t.prob - other[i].prob;
        return (d >= 0 ? '+' : '−') + (100 * Math.abs(d)).toFixed(1);
      }
    }
    return 'new';
  }
  function signed(x) {
    if (x === null || x === undefined) return '—';
    return (x >= 0 ? '+' : '−') + Math.abs(x).toFixed(3);
  }

  function showCompare(r, x) {
    var tA = doc.tokens.length, tB = cmp.b.tokens.length;
    var pa = x - (columns - tA), pb = x - (columns - tB);
    var j = pa >= 0 && pb >= 0 ? pa - cmp.offset_a : -1;
    moveCursor(r, x);
    var row = doc.rows[r];
    var out = r === doc.rows.length - 1 ? ' (output)' : '';
    var parts = [el('h2', 'where', 'row ' + row.name + out + ' · column ' + x)];
    var toks = el('p', 'tokens');
    function labelled(name, cls, text) {
      var s = el('span');
      s.appendChild(document.createTextNode(name + ' '));
      s.appendChild(el('span', 'tok ' + cls, text));
      toks.appendChild(s);
    }
    if (pa >= 0) labelled('A', 'input', doc.tokens[pa].display);
    if (pb >= 0) labelled('B', 'input', cmp.b.tokens[pb].display);
    parts.push(toks);
    if (j < 0) {
      // The one run's own prediction: nothing to compare it with.
      var only = pa >= 0 ? 'A' : 'B';
      var top = pa >= 0 ? doc.cells[r][pa].top : (cmp.unpaired_b && cmp.unpaired_b[r][pb] || {}).top_b;
      parts.push(el('p', 'hint', 'no partner: only ' + only + ' has this position (columns are right-aligned)'));
      parts.push(el('h3', null, only));
      parts.push(topTable(top, null));
    } else {
      var c = cmp.cells[r][j], a = doc.cells[r][pa];
      var side = el('div', 'side');
      var colA = el('div'), colB = el('div');
      colA.appendChild(el('h3', null, 'A'));
      colA.appendChild(topTable(a.top, null));
      colB.appendChild(el('h3', null, 'B (Δ% from A)'));
      colB.appendChild(topTable(c.top_b, a.top));
      side.appendChild(colA);
      side.appendChild(colB);
      parts.push(side);
      var dl = el('dl', 'stats');
      stat(dl, 'KL(P_A‖P_B)', nats(c.kl_ab), 'kl');
      stat(dl, 'top-1', c.top1_differs ? 'differs' : 'same', c.top1_differs ? 'differs' : null);
      stat(dl, "A's top-1 in A, B", pct(c.prob_a_of_top1_a) + ' → ' + pct(c.prob_b_of_top1_a) + ' (Δ ' + signed(c.delta_top1) + ')', 'final-here');
      stat(dl, "· its rank in B", rank(c.rank_b_of_top1_a), null);
      if (doc.target && c.delta_target !== undefined) {
        stat(dl, 'target', doc.target.display, 'tok target');
        stat(dl, '· Δp (B − A)', signed(c.delta_target), 'target-here');
      }
      if (c.nonfinite) stat(dl, 'not finite', c.nonfinite, 'nonfinite');
      parts.push(dl);
    }
    if (pinned) parts.push(el('p', 'hint', 'pinned: arrows move, Esc or click unpins'));
    panel.replaceChildren.apply(panel, parts);
    panel.dataset.r = r;
    panel.dataset.p = x;
  }

  function show(r, p) {
    if (cmp) return showCompare(r, p);
    var c = doc.cells[r][p], row = doc.rows[r], tok = doc.tokens[p];
    moveCursor(r, p);
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
    parts.push(topTable(c.top));
    var dl = el('dl', 'stats');
    stat(dl, 'entropy', nats(c.entropy), 'entropy');
    stat(dl, 'KL(P_final‖P_row)', nats(c.kl_to_final), 'kl');
    var final = doc.final_top1[p];
    stat(dl, 'final top-1', final.id < 0 ? '—' : final.display, 'tok final');
    stat(dl, '· rank, p here', rank(c.final_top1_rank) + ' · ' + pct(c.final_top1_prob), 'final-here');
    if (c.next_rank != null) {
      stat(dl, 'next token', doc.tokens[p + 1].display, 'tok next');
      stat(dl, '· rank, p here', rank(c.next_rank) + ' · ' + pct(c.next_prob), 'next-here');
    }
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
    if (!t || !t.classList || !t.classList.contains('cell')) return null;
    return [+t.dataset.r, cmp ? +t.dataset.x : +t.dataset.p];
  }
  // A comparison's pairs are at the right (the last tokens face each
  // other): a figure wider than its column starts scrolled there.
  if (cmp) {
    var figure = document.getElementById('figure');
    figure.scrollLeft = figure.scrollWidth;
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
      case 'ArrowRight': p = Math.min(p + 1, columns - 1); break;
      case 'Escape': pinned = null; show(r, p); return;
      default: return;
    }
    e.preventDefault();
    pinned = [r, p];
    show(r, p);
  });
})();
