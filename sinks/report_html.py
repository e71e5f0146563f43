"""The weekly report as one self-contained HTML page: inline CSS and inline SVG charts (matplotlib), no
scripts, no external assets, so it reads the same in a mail client, a browser and an archive.

English or Russian (`lang`); every label is in `LABELS`. Deltas compare the report's week with the one
before: rates in percentage points, times in percent; green is better, red is worse.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo

import matplotlib
from matplotlib.figure import Figure

from schemas.report import WeeklyReport, WeekMetrics

Lang = Literal["en", "ru"]

# Same bytes for the same report: fixed ids in the SVGs, no creation date, text kept as text.
matplotlib.rcParams.update({"svg.hashsalt": "contactpulse", "svg.fonttype": "none", "font.size": 9})

LABELS: Final[dict[str, dict[Lang, str]]] = {
    "title": {"en": "Support weekly report", "ru": "Еженедельный отчёт поддержки"},
    "metrics": {"en": "Key metrics", "ru": "Ключевые показатели"},
    "metric": {"en": "Metric", "ru": "Показатель"},
    "this_week": {"en": "This week", "ru": "Эта неделя"},
    "previous_week": {"en": "Previous week", "ru": "Прошлая неделя"},
    "change": {"en": "Change", "ru": "Изменение"},
    "trend": {"en": "12-week trend", "ru": "Тренд за 12 недель"},
    "first_response": {"en": "First response, median", "ru": "Первый ответ, медиана"},
    "resolution": {"en": "Resolution, median", "ru": "Решение, медиана"},
    "fcr": {"en": "First-contact resolution", "ru": "Решено с первого обращения"},
    "csat": {"en": "CSAT, average (1-5)", "ru": "CSAT, среднее (1-5)"},
    "csat_positive": {"en": "CSAT 4-5 share", "ru": "Доля оценок 4-5"},
    "repeat": {"en": "Repeat contacts", "ru": "Повторные обращения"},
    "fr_sla": {"en": "First-response SLA met", "ru": "SLA первого ответа соблюдён"},
    "res_sla": {"en": "Resolution SLA met", "ru": "SLA решения соблюдён"},
    "escalation": {"en": "Escalation rate", "ru": "Доля эскалаций"},
    "volume": {"en": "Contacts / tickets opened / resolved", "ru": "Обращения / открыто / решено тикетов"},
    "causes": {"en": "Top causes by working time", "ru": "Главные причины по рабочему времени"},
    "causes_note": {
        "en": "Working time to resolution of the tickets resolved this week, by topic (Pareto).",
        "ru": "Рабочее время до решения тикетов, решённых за неделю, по темам (Парето).",
    },
    "category": {"en": "Category", "ru": "Категория"},
    "topic": {"en": "Topic", "ru": "Тема"},
    "tickets": {"en": "Tickets", "ru": "Тикеты"},
    "hours": {"en": "Hours", "ru": "Часы"},
    "share": {"en": "Share", "ru": "Доля"},
    "cumulative": {"en": "Cumulative", "ru": "Накопленная"},
    "worst": {"en": "Worst SLA tickets", "ru": "Худшие тикеты по SLA"},
    "ticket": {"en": "Ticket", "ru": "Тикет"},
    "channel": {"en": "Channel", "ru": "Канал"},
    "priority": {"en": "Priority", "ru": "Приоритет"},
    "team": {"en": "Team", "ru": "Команда"},
    "clock": {"en": "Clock", "ru": "Часы SLA"},
    "target": {"en": "Target", "ru": "Цель"},
    "spent": {"en": "Spent", "ru": "Затрачено"},
    "still_open": {"en": "open, past due", "ru": "открыт, просрочен"},
    "first response": {"en": "first response", "ru": "первый ответ"},
    "resolution_clock": {"en": "resolution", "ru": "решение"},
    "channels": {"en": "Channels", "ru": "Каналы"},
    "contacts": {"en": "Contacts", "ru": "Обращения"},
    "repeats": {"en": "Repeat contacts", "ru": "Повторные обращения"},
    "customer": {"en": "Customer", "ru": "Клиент"},
    "repeat_tickets": {"en": "Repeat tickets", "ru": "Повторных тикетов"},
    "negative": {"en": "Negative CSAT", "ru": "Негативные оценки"},
    "score": {"en": "Score", "ru": "Оценка"},
    "rated_at": {"en": "Rated", "ru": "Оценено"},
    "respond_by": {"en": "Answer by", "ru": "Ответить до"},
    "answered_at": {"en": "Answered", "ru": "Ответ"},
    "in_time": {"en": "In time", "ru": "Вовремя"},
    "features": {"en": "Feature requests", "ru": "Запросы функций"},
    "requests": {"en": "Requests", "ru": "Запросы"},
    "customers": {"en": "Customers", "ru": "Клиенты"},
    "examples": {"en": "Examples", "ru": "Примеры"},
    "incidents": {"en": "Incidents", "ru": "Инциденты"},
    "error_code": {"en": "Error code", "ru": "Код ошибки"},
    "started": {"en": "Started", "ru": "Начало"},
    "ended": {"en": "Ended", "ru": "Конец"},
    "none": {"en": "None this week.", "ru": "За неделю нет."},
    "no": {"en": "no", "ru": "нет"},
    "yes": {"en": "yes", "ru": "да"},
    "not_answered": {"en": "not answered", "ru": "нет ответа"},
    "ongoing": {"en": "ongoing", "ru": "продолжается"},
    "h": {"en": "h", "ru": "ч"},
    "min": {"en": "min", "ru": "мин"},
    "pp": {"en": "pp", "ru": "п.п."},
}

_STYLE: Final = """
body{font-family:-apple-system,'Segoe UI',Roboto,'DejaVu Sans',Arial,sans-serif;color:#1f2328;
max-width:960px;margin:24px auto;padding:0 16px;line-height:1.4}
h1{font-size:22px;margin-bottom:2px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #d0d7de}
.sub{color:#59636e;margin-top:0}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;white-space:nowrap}.good{color:#1a7f37}.bad{color:#cf222e}
.note{color:#59636e;font-size:12px}figure{margin:8px 0}svg{max-width:100%;height:auto}
"""

# Metric rows: label key, value getter, how to show it, and whether a rise is good.
_Kind = Literal["duration", "rate", "score"]
_METRICS: Final[list[tuple[str, Callable[[WeekMetrics], float | None], _Kind, bool]]] = [
    ("first_response", lambda m: m.first_response_median_seconds, "duration", False),
    ("resolution", lambda m: m.resolution_median_seconds, "duration", False),
    ("fcr", lambda m: m.first_contact_resolution_rate, "rate", True),
    ("csat", lambda m: m.csat_average, "score", True),
    ("csat_positive", lambda m: m.csat_positive_rate, "rate", True),
    ("repeat", lambda m: m.repeat_contact_rate, "rate", False),
    ("fr_sla", lambda m: m.first_response_sla_compliance, "rate", True),
    ("res_sla", lambda m: m.resolution_sla_compliance, "rate", True),
    ("escalation", lambda m: m.escalation_rate, "rate", False),
]


class _Text:
    def __init__(self, lang: Lang, zone: ZoneInfo) -> None:
        self.lang, self.zone = lang, zone

    def __call__(self, key: str) -> str:
        return LABELS[key][self.lang]

    def duration(self, seconds: float | None) -> str:
        if seconds is None:
            return "—"
        if seconds < 3600:
            return f"{seconds / 60:.0f} {self('min')}"
        return f"{seconds / 3600:.1f} {self('h')}"

    def value(self, value: float | None, kind: _Kind) -> str:
        if value is None:
            return "—"
        if kind == "duration":
            return self.duration(value)
        if kind == "rate":
            return f"{value * 100:.1f}%"
        return f"{value:.2f}"

    def delta(self, now: float | None, before: float | None, kind: _Kind, rise_is_good: bool) -> str:
        if now is None or before is None:
            return "—"
        if kind == "duration":
            if before == 0:
                return "—"
            change = (now - before) / before * 100
            text = f"{change:+.1f}%"
        elif kind == "rate":
            change = (now - before) * 100
            text = f"{change:+.1f} {self('pp')}"
        else:
            change = now - before
            text = f"{change:+.2f}"
        # Below a tenth of a percent (point), or a hundredth of a CSAT point, is noise: no colour.
        if abs(change) < (0.01 if kind == "score" else 0.1):
            return html.escape(text)
        good = (change > 0) == rise_is_good
        return f'<span class="{"good" if good else "bad"}">{html.escape(text)}</span>'

    @staticmethod
    def count_change(now: int, before: int) -> str:
        """A volume's change in percent, uncoloured (more contacts is neither good nor bad)."""
        return f"{(now - before) / before * 100:+.1f}%" if before else "—"

    def instant(self, value: datetime | None) -> str:
        return value.astimezone(self.zone).strftime("%d.%m %H:%M") if value is not None else "—"


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # the XML declaration and doctype are not allowed inside HTML


def trend_chart(report: WeeklyReport, t: _Text) -> str:
    """Small multiples: each key metric over the twelve weeks, the report's week marked."""
    weeks = [m.week.strftime("%d.%m") for m in report.trend]
    figure = Figure(figsize=(9.2, 4.6))
    axes = figure.subplots(2, 4).flatten()
    series: list[tuple[str, Callable[[WeekMetrics], float | None], _Kind]] = [
        (key, getter, kind) for key, getter, kind, _ in _METRICS if key not in ("csat_positive", "escalation")
    ] + [("volume", lambda m: float(m.contacts), "score")]
    for ax, (key, getter, kind) in zip(axes, series, strict=True):
        # A week with no contacts at all is a week before the data begins: no point, not a zero.
        values = [getter(m) if m.contacts or m.tickets_opened else None for m in report.trend]
        unit = ""
        if kind == "duration":
            longest = max((v for v in values if v is not None), default=0.0)
            scale, unit = (3600, t("h")) if longest >= 3600 else (60, t("min"))
            values = [v / scale if v is not None else None for v in values]
        elif kind == "rate":
            values = [v * 100 if v is not None else None for v in values]
            unit = "%"
        xs = [i for i, v in enumerate(values) if v is not None]
        ys = [v for v in values if v is not None]
        ax.plot(xs, ys, color="#0969da", marker="o", markersize=3, linewidth=1.5)
        if values[-1] is not None:
            ax.plot([len(values) - 1], [values[-1]], marker="o", color="#cf222e", markersize=5)
        title = t(key) if key != "volume" else t("contacts")
        ax.set_title(f"{title}, {unit}" if unit else title, fontsize=8)
        ax.set_xticks([0, len(weeks) - 1], [weeks[0], weeks[-1]])
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return _svg(figure)


def pareto_chart(report: WeeklyReport, t: _Text) -> str:
    causes = report.causes
    figure = Figure(figsize=(9.2, 3.2))
    ax = figure.subplots()
    # Positions, not names: one topic can appear under two categories.
    positions = list(range(len(causes)))
    ax.bar(positions, [c.working_hours for c in causes], color="#0969da")
    ax.set_xticks(positions, [f"{c.topic or '—'}\n{c.category or '—'}" for c in causes])
    ax.set_ylabel(t("hours"))
    ax.tick_params(axis="x", labelsize=7)
    line = ax.twinx()
    line.plot(
        positions, [c.cumulative_share * 100 for c in causes], color="#cf222e", marker="o", markersize=3
    )
    line.set_ylim(0, 105)
    line.set_ylabel(f"{t('cumulative')}, %")
    figure.tight_layout()
    return _svg(figure)


def _table(headers: Sequence[tuple[str, bool]], rows: Sequence[Sequence[str]], empty: str) -> str:
    """Headers as (text, numeric); cells are HTML already."""
    if not rows:
        return f"<p>{html.escape(empty)}</p>"
    head = "".join(
        f'<th class="n">{html.escape(h)}</th>' if n else f"<th>{html.escape(h)}</th>" for h, n in headers
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell}</td>' if numeric else f"<td>{cell}</td>"
            for cell, (_, numeric) in zip(row, headers, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: WeeklyReport) -> str:
    lang = report_lang(report)
    zone = ZoneInfo(report.time_zone)
    t = _Text(lang, zone)
    e = html.escape
    now, before = report.this_week, report.previous_week
    last_day = report.ends.astimezone(zone).date().toordinal() - 1
    period = (
        f"{report.starts.astimezone(zone):%d.%m.%Y} – "
        f"{datetime.fromordinal(last_day):%d.%m.%Y} ({e(report.time_zone)})"
    )
    parts = [
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">',
        f"<title>{e(t('title'))} {e(report.iso_week)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(t('title'))} · {e(report.iso_week)}</h1><p class='sub'>{period}</p>",
        f"<h2>{e(t('metrics'))}</h2>",
    ]
    metric_rows = [
        [
            e(t("volume")),
            f"{now.contacts} / {now.tickets_opened} / {now.tickets_resolved}",
            f"{before.contacts} / {before.tickets_opened} / {before.tickets_resolved}",
            t.count_change(now.contacts, before.contacts),
        ]
    ]
    for key, getter, kind, rise_is_good in _METRICS:
        metric_rows.append(
            [
                e(t(key)),
                e(t.value(getter(now), kind)),
                e(t.value(getter(before), kind)),
                t.delta(getter(now), getter(before), kind, rise_is_good),
            ]
        )
    parts.append(
        _table(
            [(t("metric"), False), (t("this_week"), True), (t("previous_week"), True), (t("change"), True)],
            metric_rows,
            t("none"),
        )
    )
    parts += [f"<h2>{e(t('trend'))}</h2>", f'<figure class="chart">{trend_chart(report, t)}</figure>']

    parts += [f"<h2>{e(t('causes'))}</h2>", f"<p class='note'>{e(t('causes_note'))}</p>"]
    if report.causes:
        parts.append(f'<figure class="chart">{pareto_chart(report, t)}</figure>')
    parts.append(
        _table(
            [
                (t("category"), False),
                (t("topic"), False),
                (t("tickets"), True),
                (t("hours"), True),
                (t("share"), True),
                (t("cumulative"), True),
                (t("change"), True),
            ],
            [
                [
                    e(c.category or "—"),
                    e(c.topic or "—"),
                    str(c.tickets),
                    f"{c.working_hours:.1f}",
                    f"{c.share * 100:.1f}%",
                    f"{c.cumulative_share * 100:.1f}%",
                    t.delta(c.working_hours, c.previous_week_hours or None, "duration", False),
                ]
                for c in report.causes
            ],
            t("none"),
        )
    )

    parts.append(f"<h2>{e(t('worst'))}</h2>")
    parts.append(
        _table(
            [
                (t("ticket"), False),
                (t("channel"), False),
                (t("priority"), False),
                (t("team"), False),
                (t("topic"), False),
                (t("clock"), False),
                (t("target"), True),
                (t("spent"), True),
            ],
            [
                [
                    e(w.ticket_id),
                    e(w.channel),
                    e(w.priority),
                    e(w.team or "—"),
                    e(w.topic or "—"),
                    e(t(w.clock) if w.clock == "first response" else t("resolution_clock")),
                    e(t.duration(w.target_seconds)),
                    e(t.duration(w.spent_seconds)) if w.spent_seconds is not None else e(t("still_open")),
                ]
                for w in report.worst_sla_tickets
            ],
            t("none"),
        )
    )

    parts.append(f"<h2>{e(t('channels'))}</h2>")
    parts.append(
        _table(
            [
                (t("channel"), False),
                (t("contacts"), True),
                (t("change"), True),
                (t("tickets"), True),
                (t("first_response"), True),
                (t("fr_sla"), True),
            ],
            [
                [
                    e(c.channel),
                    str(c.contacts),
                    t.count_change(c.contacts, c.previous_week_contacts),
                    str(c.tickets_opened),
                    e(t.duration(c.first_response_median_seconds)),
                    e(t.value(c.first_response_sla_compliance, "rate")),
                ]
                for c in report.channels
            ],
            t("none"),
        )
    )

    parts.append(f"<h2>{e(t('repeats'))}</h2>")
    parts.append(
        _table(
            [(t("customer"), False), (t("topic"), False), (t("repeat_tickets"), True)],
            [[e(r.customer_id), e(r.topic), str(r.tickets)] for r in report.repeat_customers],
            t("none"),
        )
    )

    parts.append(f"<h2>{e(t('negative'))}</h2>")
    parts.append(
        _table(
            [
                (t("ticket"), False),
                (t("score"), True),
                (t("rated_at"), True),
                (t("respond_by"), True),
                (t("answered_at"), True),
                (t("in_time"), True),
            ],
            [
                [
                    e(n.ticket_id),
                    str(n.score),
                    e(t.instant(n.rated_at)),
                    e(t.instant(n.respond_by)),
                    e(t.instant(n.answered_at)) if n.answered_at else e(t("not_answered")),
                    f'<span class="good">{e(t("yes"))}</span>'
                    if n.answered_in_time
                    else f'<span class="bad">{e(t("no"))}</span>',
                ]
                for n in report.negative_ratings
            ],
            t("none"),
        )
    )

    parts.append(f"<h2>{e(t('features'))}</h2>")
    parts.append(
        _table(
            [(t("features"), False), (t("requests"), True), (t("customers"), True), (t("examples"), False)],
            [
                [
                    e(f.summary),
                    str(f.requests),
                    str(f.customers),
                    "<br>".join(f"«{e(x)}»" for x in f.examples),
                ]
                for f in report.feature_clusters
            ],
            t("none"),
        )
    )

    parts.append(f"<h2>{e(t('incidents'))}</h2>")
    parts.append(
        _table(
            [
                (t("error_code"), False),
                (t("customers"), True),
                (t("tickets"), True),
                (t("started"), True),
                (t("ended"), True),
            ],
            [
                [
                    e(i.error_code),
                    str(i.customers),
                    str(i.tickets),
                    e(t.instant(i.started_at)),
                    e(t.instant(i.ended_at)) if i.ended_at else e(t("ongoing")),
                ]
                for i in report.incidents
            ],
            t("none"),
        )
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def plain_summary(report: WeeklyReport) -> str:
    """The key metrics as text: the e-mail's plain part, for clients that show no HTML."""
    t = _Text(report_lang(report), ZoneInfo(report.time_zone))
    now, before = report.this_week, report.previous_week
    was = t("previous_week").lower()
    lines = [f"{t('title')} {report.iso_week}", ""]
    lines.append(
        f"{t('volume')}: {now.contacts} / {now.tickets_opened} / {now.tickets_resolved} "
        f"({was}: {before.contacts} / {before.tickets_opened} / {before.tickets_resolved})"
    )
    for key, getter, kind, _ in _METRICS:
        lines.append(f"{t(key)}: {t.value(getter(now), kind)} ({was}: {t.value(getter(before), kind)})")
    return "\n".join(lines) + "\n"


def report_lang(report: WeeklyReport) -> Lang:
    return "ru" if report.lang == "ru" else "en"


def title(report: WeeklyReport) -> str:
    return LABELS["title"][report_lang(report)]
