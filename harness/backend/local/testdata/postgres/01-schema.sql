CREATE TABLE ledger (id text PRIMARY KEY);
INSERT INTO ledger VALUES ('a'), ('b');
