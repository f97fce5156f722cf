-- Monthly credit refills: credits_refill_day is the day of the month (1 to
-- 31) of a monthly refill, whose credits_refill_interval is then NULL; NULL
-- for a refill every interval (keyward.CreditRefill.Day).
ALTER TABLE keys ADD COLUMN credits_refill_day INTEGER CHECK (credits_refill_day BETWEEN 1 AND 31);
ALTER TABLE meters ADD COLUMN credits_refill_day INTEGER CHECK (credits_refill_day BETWEEN 1 AND 31);
