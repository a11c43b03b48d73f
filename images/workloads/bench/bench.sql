-- bench.sql: an sqlite3 workload for the paging comparison, run by /bench/run.sh sqlite3 N,
-- which sets @n with ".parameter set @n N" before this script. Inserts, indexes, updates,
-- deletes, joins and aggregates on a database file in /tmp (tmpfs) with a 16 MiB page cache,
-- then prints one result line whose checksum depends only on N.
.bail on
.output /dev/null
PRAGMA cache_size = -16384;
PRAGMA journal_mode = MEMORY;
.output stdout
CREATE TABLE param(n INTEGER NOT NULL);
INSERT INTO param SELECT max(1, CAST(@n AS INTEGER));
CREATE TABLE item(id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL);
CREATE TABLE tag(item_id INTEGER NOT NULL, tag TEXT NOT NULL);
BEGIN;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < (SELECT n FROM param))
INSERT INTO item(id, k, v)
SELECT i, (i * 2654435761) % 1000003, printf('row-%d-%x-%s', i, i * 7919, hex(i * 31))
FROM c;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < (SELECT n FROM param) * 2)
INSERT INTO tag(item_id, tag)
SELECT (i * 48271) % (SELECT n FROM param) + 1, 't' || ((i * 16807) % 37) FROM c;
COMMIT;
CREATE INDEX item_k ON item(k);
CREATE INDEX tag_item ON tag(item_id);
UPDATE item SET v = v || '-u' WHERE k % 3 = 0;
DELETE FROM item WHERE k % 7 = 0;
CREATE TABLE summary AS
SELECT t.tag AS tag, count(*) AS n, sum(length(i.v)) AS len, max(i.k) AS kmax
FROM tag t JOIN item i ON i.id = t.item_id
GROUP BY t.tag;
SELECT 'result: sqlite3 n=' || (SELECT n FROM param)
  || ' rows=' || (SELECT count(*) FROM item)
  || ' tags=' || (SELECT count(*) FROM summary)
  || ' checksum=' || printf('%016x',
    (SELECT sum((id * 31 + k) % 1000000007) FROM item) % 1000000007 * 1000003
    + (SELECT sum((n * 131 + len * 7 + kmax) % 1000000007) FROM summary)
    + (SELECT count(*) FROM item WHERE k BETWEEN 1000 AND 500000));
