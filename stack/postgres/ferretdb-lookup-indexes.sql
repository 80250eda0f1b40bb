-- Lookup indexes that FerretDB 1.24's PostgreSQL backend can use (ADR 0005). Applied by stack/stack.sh to the
-- `ferretdb` database on every `up`; idempotent.
--
-- FerretDB turns an equality filter {k: v} into `_jsonb -> 'k' @> 'v'`, but builds every MongoDB index (the
-- `_id` one too) as a btree over `(_jsonb -> 'k')`, which `@>` cannot use: every find, and the find inside
-- every update, scans the whole table. After each such btree index is created, this trigger adds a GIN index
-- over the same expression, which serves `@>`. fastupdate is off so that a lookup never scans a pending
-- list; an insert pays for its GIN entries at once.
--
-- A btree that enforces nothing (not unique) serves no FerretDB query at all, and every insert maintained it
-- beside its GIN: the btree is dropped and its GIN takes its name, so what FerretDB's metadata calls the
-- index still exists under that name (ADR 0058). Unique btrees (`_id`) stay: they enforce uniqueness.
CREATE OR REPLACE FUNCTION bc_add_lookup_indexes() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    cmd record;
    col int;
    expr text;
    gin_name text;
    first_gin text;
BEGIN
    FOR cmd IN
        SELECT c.objid, i.indrelid, i.indnatts, i.indisunique, t.relname AS tab, n.nspname AS nsp, x.relname AS idx
        FROM pg_event_trigger_ddl_commands() c
        JOIN pg_index i ON i.indexrelid = c.objid
        JOIN pg_class x ON x.oid = i.indexrelid
        JOIN pg_am am ON am.oid = x.relam
        JOIN pg_class t ON t.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE c.object_type = 'index' AND am.amname = 'btree' AND t.relname NOT LIKE '\_ferretdb\_%'
    LOOP
        first_gin := NULL;
        FOR col IN 1..cmd.indnatts LOOP
            expr := pg_get_indexdef(cmd.objid, col, true);
            -- only top-level fields: the only ones FerretDB pushes down
            CONTINUE WHEN expr !~ '^\(?_jsonb -> ''[^'']*''::text\)?$';
            CONTINUE WHEN EXISTS (
                SELECT 1 FROM pg_index gi
                JOIN pg_class gx ON gx.oid = gi.indexrelid
                JOIN pg_am gam ON gam.oid = gx.relam
                WHERE gi.indrelid = cmd.indrelid AND gam.amname = 'gin'
                  AND pg_get_indexdef(gi.indexrelid, 1, true) = expr);
            gin_name := left(cmd.idx, 55) || '_gin' || col;
            EXECUTE format('CREATE INDEX %I ON %I.%I USING gin ((%s) jsonb_path_ops) WITH (fastupdate = off)',
                           gin_name, cmd.nsp, cmd.tab, expr);
            first_gin := coalesce(first_gin, gin_name);
        END LOOP;
        IF first_gin IS NOT NULL AND NOT cmd.indisunique THEN
            EXECUTE format('DROP INDEX %I.%I', cmd.nsp, cmd.idx);
            EXECUTE format('ALTER INDEX %I.%I RENAME TO %I', cmd.nsp, first_gin, cmd.idx);
        END IF;
    END LOOP;
END
$fn$;

DROP EVENT TRIGGER IF EXISTS bc_lookup_indexes;
CREATE EVENT TRIGGER bc_lookup_indexes ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
    EXECUTE FUNCTION bc_add_lookup_indexes();

-- The same for the indexes of collections created before: a non-unique btree whose GIN exists gives way to it.
DO $do$
DECLARE
    old record;
BEGIN
    FOR old IN
        SELECT n.nspname AS nsp, x.relname AS idx, gx.relname AS gin
        FROM pg_index i
        JOIN pg_class x ON x.oid = i.indexrelid
        JOIN pg_am am ON am.oid = x.relam
        JOIN pg_class t ON t.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_index gi ON gi.indrelid = i.indrelid
        JOIN pg_class gx ON gx.oid = gi.indexrelid
        JOIN pg_am gam ON gam.oid = gx.relam
        WHERE am.amname = 'btree' AND NOT i.indisunique AND t.relname NOT LIKE '\_ferretdb\_%'
          AND gam.amname = 'gin' AND gx.relname = left(x.relname, 55) || '_gin1'
    LOOP
        EXECUTE format('DROP INDEX %I.%I', old.nsp, old.idx);
        EXECUTE format('ALTER INDEX %I.%I RENAME TO %I', old.nsp, old.gin, old.idx);
    END LOOP;
END
$do$;
