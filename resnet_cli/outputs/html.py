"""Records → one self-contained HTML page (``-f html``, ``-o report.html``): a thumbnail per
photo with its top-k labels and score bars, sortable by predicted class and by confidence
(least sure first finds the mistakes), a filter box, the errors with their reasons and the
run's summary. No network: styles and the script are inline, thumbnails are embedded JPEGs, and
a Content-Security-Policy lets nothing else load or run.

Written as records stream (memory stays flat): each tile goes out as it comes, the errors wait
in a temporary file, the summary is written last and shown first. Every text from a record
(paths, labels, errors) is HTML-escaped, so a file named like markup shows as text.
"""

from __future__ import annotations

import base64
import html
import secrets
import shutil
import tempfile

from ..records import Record, path_display

TILES_PER_CLASS = 100  # tiles shown per predicted class; the rest are counted
TILES_IN_PAGE = 5_000  # tiles in the whole page (~30 MB of thumbnails); the rest are counted

STYLE = """
body{font:14px system-ui,sans-serif;margin:0;background:#f6f6f4;color:#222;display:flex;flex-direction:column}
header{order:-2;padding:12px 16px;background:#fff;border-bottom:1px solid #ddd}
header h1{font-size:18px;margin:0 0 6px}
#summary{order:-1;padding:8px 16px;background:#fff;border-bottom:1px solid #ddd}
#summary dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:0}
#controls{display:flex;gap:12px;align-items:center;margin-top:8px}
#controls input{flex:1;max-width:420px;padding:4px 6px}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:10px;padding:12px 16px}
.tile{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0;padding:6px;overflow:hidden}
.tile img{width:128px;height:128px;display:block;margin:0 auto 4px;image-rendering:auto}
.tile .path{font-size:12px;color:#555;word-break:break-all}
.tile .note{font-size:12px;color:#a33}
.tile ol{list-style:none;margin:4px 0 0;padding:0}
.tile li{font-size:12px;display:grid;grid-template-columns:1fr 48px 40px;gap:4px;align-items:center}
.tile li .label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.tile meter{width:48px}.tile .score{text-align:right}
.group{grid-column:1/-1;font-weight:600;margin-top:6px}
#errors{padding:0 16px 16px}
#errors li{font-family:ui-monospace,monospace;font-size:12px}
.more{padding:0 16px;color:#666}
"""

SCRIPT = """
const grid=document.getElementById('grid'),tiles=[...grid.querySelectorAll('.tile')];
const filter=document.getElementById('filter'),order=document.getElementById('order');
function arrange(){
  const q=filter.value.trim().toLowerCase(),how=order.value;
  grid.querySelectorAll('.group').forEach(g=>g.remove());
  const shown=tiles.filter(t=>{const ok=!q||t.textContent.toLowerCase().includes(q);t.hidden=!ok;return ok;});
  const key={input:t=>+t.dataset.i,unsure:t=>+t.dataset.score,sure:t=>-t.dataset.score,
             class:t=>t.dataset.label}[how];
  shown.sort((a,b)=>{const x=key(a),y=key(b);return x<y?-1:x>y?1:(+a.dataset.i)-(+b.dataset.i);});
  let last=null;
  for(const t of shown){
    if(how==='class'&&t.dataset.label!==last){last=t.dataset.label;
      const g=document.createElement('div');g.className='group';g.textContent=last;grid.appendChild(g);}
    grid.appendChild(t);}
  document.getElementById('shown').textContent=shown.length+' of '+tiles.length+' shown';
}
filter.addEventListener('input',arrange);order.addEventListener('change',arrange);arrange();
"""


def text(value: object) -> str:
    """Any record text, safe in an element or a quoted attribute."""
    return html.escape(path_display(str(value)) if isinstance(value, str) else str(value), quote=True)


def page_start(title: str, nonce: str, style: str = "") -> str:
    """The head of a self-contained page: nothing may load, only its own style and script run."""
    policy = f"default-src 'none'; img-src data:; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'"
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        f'<meta name=viewport content="width=device-width"><title>{text(title)}</title>'
        f"<style nonce={nonce}>{STYLE}{style}</style></head><body>\n<header><h1>{text(title)}</h1>"
    )


def page_end(nonce: str, script: str = "") -> str:
    return (f"<script nonce={nonce}>{script}</script>\n" if script else "") + "</body></html>\n"


def facts_section(facts: list[tuple[str, object]]) -> str:
    """The page's summary: name and value, a row each."""
    rows = "".join(f"<dt>{text(name)}</dt><dd>{text(value)}</dd>" for name, value in facts)
    return f"<section id=summary><dl>{rows}</dl></section>\n"


def tile(record: Record, data: str = "", note: str = "") -> str:
    """One photo: its thumbnail, path, an optional note (the true class) and its top-k with bars."""
    image = (
        f'<img alt="" src="data:image/jpeg;base64,{base64.b64encode(record.thumbnail).decode()}">'
        if record.thumbnail
        else ""
    )
    rows = "".join(
        f"<li><span class=label>{text(p.label)}</span>"
        f'<meter min=0 max=1 value="{p.score:.4f}"></meter><span class=score>{p.score:.3f}</span></li>'
        for p in record.predictions
    )
    note = f"<div class=note>{text(note)}</div>" if note else ""
    return (
        f"<figure class=tile {data}>{image}<figcaption><div class=path>{text(record.path)}</div>{note}"
        f"<ol>{rows}</ol></figcaption></figure>\n"
    )


class HtmlSink:
    """The page on ``stream`` (closed by ``close`` when the sink opened it). ``report``: the
    run's Report, whose counts and summary line the page shows once the run ends."""

    def __init__(self, stream, appending: bool = False, report=None, title: str = "resnet-classify report"):
        self.stream, self.report, self.owns_stream = stream, report, False
        self.nonce = secrets.token_urlsafe(16)
        self.count = self.tiles = 0
        self.per_class: dict[str, int] = {}
        self.hidden: dict[str, int] = {}
        self.errors = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
        self.error_count = 0
        self._out(
            page_start(title, self.nonce)
            + '<div id=controls><input id=filter type=search placeholder="filter: file name or label">'
            "<label>order <select id=order><option value=input>input order</option>"
            "<option value=class>by predicted class</option><option value=unsure>least sure first</option>"
            "<option value=sure>most sure first</option></select></label><span id=shown></span></div></header>\n"
            "<main id=grid>\n"
        )

    def _out(self, chunk: str) -> None:
        self.stream.write(chunk)

    def write(self, record: Record) -> None:
        self.count += 1
        if record.error is not None:
            self.error_count += 1
            self.errors.write(f"<li><span class=path>{text(record.path)}</span>: {text(record.error)}</li>\n")
            return
        top = record.predictions[0] if record.predictions else None
        label = top.label if top else ""
        self.per_class[label] = self.per_class.get(label, 0) + 1
        if self.per_class[label] > TILES_PER_CLASS or self.tiles >= TILES_IN_PAGE:
            self.hidden[label] = self.hidden.get(label, 0) + 1
            return
        self.tiles += 1
        score = top.score if top else 0.0
        self._out(tile(record, data=f'data-i="{self.count}" data-label="{text(label)}" data-score="{score:.6f}"'))
        self.stream.flush()

    def close(self) -> None:
        self._out("</main>\n")
        if self.hidden:
            more = ", ".join(f"{text(label)} {count}" for label, count in sorted(self.hidden.items()))
            self._out(
                f"<p class=more id=more>Not shown (at most {TILES_PER_CLASS} photos per class and {TILES_IN_PAGE} in "
                f"all): {sum(self.hidden.values())} more — {more}.</p>\n"
            )
        self._out(f"<section id=errors><h2>Errors ({self.error_count})</h2><ul>\n")
        self.errors.seek(0)
        shutil.copyfileobj(self.errors, self.stream)
        self.errors.close()
        self._out("</ul></section>\n")
        self._out(self._summary())
        self._out(page_end(self.nonce, SCRIPT))
        self.stream.flush()
        if self.owns_stream:
            self.stream.close()

    def _summary(self) -> str:
        report = self.report
        facts = [("records", self.count), ("errors", self.error_count)]
        if report is not None:
            facts = [
                ("model", report.model or "—"),
                ("classified", report.classified),
                ("failed", report.failed),
                ("skipped (not images)", report.skipped),
                *([("already done", report.resumed)] if report.resumed else []),
                ("ran on", report.ran_on or "—"),
                ("summary", report.summary()),
                *(
                    [("made with", ", ".join(f"{k} {v}" for k, v in report.settings.items() if v is not None))]
                    if report.settings
                    else []
                ),
            ]
        return facts_section(facts)
