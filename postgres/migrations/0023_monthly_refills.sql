-- Monthly credit refills: the PostgreSQL twin of
-- sqlite/migrations/0023_monthly_refills.sql. credits_refill_day is the day
-- of the month (1 to 31) of a monthly refill, whose credits_refill_interval
-- is then NULL; NULL for a refill every interval.
ALTER TABLE keys ADD COLUMN credits_refill_day smallint CHECK (credits_refill_day BETWEEN 1 AND 31);
ALTER TABLE meters ADD COLUMN credits_refill_day smallint CHECK (credits_refill_day BETWEEN 1 AND 31);
