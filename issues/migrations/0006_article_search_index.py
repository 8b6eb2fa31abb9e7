"""The archive's full-text index of articles, one kind per database (issues/search.py).

PostgreSQL: a stored, generated tsvector column (headline weighted A, summary B, body C,
English stemming) with a GIN index; the database computes it on every insert and update,
and adding the column computes it for the rows already there.

SQLite: an FTS5 table over the same three columns with the porter stemmer, holding no
copy of the text (content=issues_article), kept in step by triggers and filled by a
'rebuild'. Django rebuilds a SQLite table to alter it, which drops its triggers: a later
migration that alters issues_article on SQLite must create them again
(`sqlite_triggers`). tests/issues/test_search.py fails if they are missing.

Neither is a model field: the ORM never reads or writes them."""

from django.db import migrations

POSTGRES = [
    """
    ALTER TABLE issues_article ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, coalesce(headline, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(summary, '')), 'B')
        || setweight(to_tsvector('english'::regconfig, coalesce(body, '')), 'C')
    ) STORED
    """,
    "CREATE INDEX issues_article_search_vector ON issues_article USING gin (search_vector)",
]
POSTGRES_REVERSE = [
    "DROP INDEX IF EXISTS issues_article_search_vector",
    "ALTER TABLE issues_article DROP COLUMN IF EXISTS search_vector",
]

_COLUMNS = "headline, summary, body"
_OLD = "old.id, old.headline, old.summary, old.body"
_NEW = "new.id, new.headline, new.summary, new.body"


def sqlite_triggers() -> list[str]:
    """The triggers that keep issues_article_fts in step with issues_article."""
    delete = (
        f"INSERT INTO issues_article_fts(issues_article_fts, rowid, {_COLUMNS}) "
        f"VALUES ('delete', {_OLD});"
    )
    insert = f"INSERT INTO issues_article_fts(rowid, {_COLUMNS}) VALUES ({_NEW});"
    return [
        f"CREATE TRIGGER issues_article_fts_insert AFTER INSERT ON issues_article BEGIN {insert} END",
        f"CREATE TRIGGER issues_article_fts_delete AFTER DELETE ON issues_article BEGIN {delete} END",
        "CREATE TRIGGER issues_article_fts_update AFTER UPDATE OF headline, summary, body "
        f"ON issues_article BEGIN {delete} {insert} END",
    ]


SQLITE = [
    f"CREATE VIRTUAL TABLE issues_article_fts USING fts5({_COLUMNS}, "
    "content='issues_article', content_rowid='id', tokenize='porter unicode61')",
    *sqlite_triggers(),
    "INSERT INTO issues_article_fts(issues_article_fts) VALUES ('rebuild')",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS issues_article_fts_insert",
    "DROP TRIGGER IF EXISTS issues_article_fts_delete",
    "DROP TRIGGER IF EXISTS issues_article_fts_update",
    "DROP TABLE IF EXISTS issues_article_fts",
]


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor) -> None:
        for statement in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("issues", "0005_publication_tracking_choice"),
    ]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES, "sqlite": SQLITE}),
            _run({"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE}),
            elidable=False,
        ),
    ]
