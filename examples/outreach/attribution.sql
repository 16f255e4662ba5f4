-- A/B attribution over a tracking database (`ruledeck replay … --tracking-db FILE`):
-- per experiment group, the units assigned, how many were reached (sent or held), and how
-- many ordered within 7 days after their first decision in the experiment.
WITH assigned AS (
    SELECT experiment, grp, unit,
           MIN(at_unix) AS first_at,
           MAX(outcome IN ('sent', 'held')) AS reached
    FROM records
    WHERE experiment IS NOT NULL
    GROUP BY experiment, grp, unit
)
SELECT a.experiment,
       a.grp,
       COUNT(*) AS units,
       SUM(a.reached) AS reached,
       SUM(EXISTS (
           SELECT 1 FROM events e
           WHERE e.kind = 'order' AND e.unit = a.unit
             AND e.time_unix > a.first_at AND e.time_unix <= a.first_at + 7 * 86400
       )) AS converted
FROM assigned a
GROUP BY a.experiment, a.grp
ORDER BY a.experiment, a.grp;
