"""Pipeline page: which stage lags and by how much (event time for replay, wall clock for live),
ledger gaps per partition, consumer groups, Dagster sensors and asset checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
from dash import Input, Output, dcc, html

from dash_app import figures
from dash_app.components import CARD, ROW, columns, table
from dash_app.data.dagster import dagster_status, materialized_through
from dash_app.data.kafka import kafka_status
from dash_app.data.progress import pipeline_progress
from dash_app.services import Services
from stock_assets.lib import progress
from stock_assets.lib.topics import ALL_TOPICS, topic_name

SIGNALS_ASSET = ["analytics", "signals"]


def layout() -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    html.Button("Refresh", id="pipeline-refresh", n_clicks=0),
                    html.Span(id="pipeline-updated", style={"color": "#666"}),
                ],
                style={**CARD, **ROW},
            ),
            html.Div(
                [
                    html.H4("Progress per stage"),
                    html.Div(id="pipeline-summary", style={"fontWeight": "600"}),
                    dcc.Graph(id="pipeline-progress-chart"),
                    table("pipeline-progress"),
                ],
                style=CARD,
            ),
            html.Div(
                [
                    html.H4("Ticks topic vs ingest ledger (per partition)"),
                    dcc.Graph(id="pipeline-offsets-chart"),
                    table("pipeline-offsets"),
                    html.H5("Ingest ledger (ingest.kafka_offsets)"),
                    table("pipeline-ledger"),
                ],
                style=CARD,
            ),
            html.Div(
                [
                    html.H4("Kafka consumer groups"),
                    html.Div(id="pipeline-kafka-status"),
                    dcc.Graph(id="pipeline-kafka-chart"),
                    table("pipeline-kafka"),
                ],
                style=CARD,
            ),
            html.Div(
                [
                    html.H4("Dagster: last sensor runs"),
                    html.Div(id="pipeline-dagster-status"),
                    table("pipeline-sensors"),
                    html.H4("Asset check results"),
                    table("pipeline-checks"),
                ],
                style=CARD,
            ),
            dcc.Interval(id="pipeline-interval", interval=30_000),
        ]
    )


def register(app: dash.Dash, s: Services) -> None:
    triggers = (Input("pipeline-refresh", "n_clicks"), Input("pipeline-interval", "n_intervals"))

    @app.callback(
        Output("pipeline-summary", "children"),
        Output("pipeline-progress-chart", "figure"),
        Output("pipeline-progress", "data"),
        Output("pipeline-progress", "columns"),
        Output("pipeline-offsets-chart", "figure"),
        Output("pipeline-offsets", "data"),
        Output("pipeline-offsets", "columns"),
        Output("pipeline-ledger", "data"),
        Output("pipeline-ledger", "columns"),
        Output("pipeline-updated", "children"),
        *triggers,
    )
    def update_progress(_c: int, _n: int | None) -> tuple[Any, ...]:
        signals_through = materialized_through(
            s.settings.dagster_graphql_url, SIGNALS_ASSET, s.settings.dagster_timeout_s
        )
        found = pipeline_progress(s.warehouse, s.kafka, s.settings.kafka_timeout_s, signals_through)
        stages = figures.stage_table(found)
        offsets = figures.partition_table(found)
        ledger = figures.records(s.warehouse.ledger())
        updated = f"updated {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
        return (
            progress.summary(found),
            figures.progress_figure(found),
            stages,
            columns(stages),
            figures.offsets_figure(found),
            offsets,
            columns(offsets),
            ledger,
            columns(ledger),
            updated,
        )

    @app.callback(
        Output("pipeline-kafka-chart", "figure"),
        Output("pipeline-kafka", "data"),
        Output("pipeline-kafka", "columns"),
        Output("pipeline-kafka-status", "children"),
        *triggers,
    )
    def update_kafka(_c: int, _n: int | None) -> tuple[Any, ...]:
        if s.kafka is None:
            return figures.empty_figure("Kafka not configured"), [], [], ""
        topics = [topic_name(t, s.kafka.topic_prefix) for t in ALL_TOPICS]
        status = kafka_status(s.kafka, topics, s.settings.kafka_timeout_s)
        rows = figures.records(
            [
                {
                    "consumer": p.consumer,
                    "topic": p.topic,
                    "partition": p.partition,
                    "end offset": p.high,
                    "position": p.position,
                    "lag": p.lag,
                    "error": p.error or "",
                }
                for p in status.partitions
            ]
        )
        note = status.error or f"{len(status.partitions)} consumer group partition positions"
        return figures.kafka_lag_figure(status), rows, columns(rows), note

    @app.callback(
        Output("pipeline-sensors", "data"),
        Output("pipeline-sensors", "columns"),
        Output("pipeline-checks", "data"),
        Output("pipeline-checks", "columns"),
        Output("pipeline-dagster-status", "children"),
        *triggers,
    )
    def update_dagster(_c: int, _n: int | None) -> tuple[Any, ...]:
        status = dagster_status(s.settings.dagster_graphql_url, s.settings.dagster_timeout_s)
        sensors, checks = figures.dagster_tables(status)
        note = status.error if status.error else f"{len(sensors)} sensors, {len(checks)} checks"
        return sensors, columns(sensors), checks, columns(checks), note
