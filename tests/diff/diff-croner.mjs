// SPDX-License-Identifier: MIT
// Differential test: scheduler/schedule.c (through schedule-diff-driver) against croner.
//
// usage: node diff-croner.mjs DRIVER [CASES] [SEED]
//
// Random (expression, zone, instant) cases, half of them within a day of a real DST
// transition; the next FIRES fires of each are computed by both and compared.
//
// croner runs with the options that give our semantics: dom/dow OR (domAndDow: false, the
// former legacyMode), fixedTimeRule "no-wildcard" (fixed-time unless s/m/h hold a wildcard
// or step), sloppyRanges (a/n means a-max/n). Where croner's documented semantics still
// differ from SPEC section 3/4, the case is excluded by one of these explicit rules:
//
//   R1 fixed-time class: we call an expression fixed-time when none of its second, minute
//      and hour fields *begins* with '*'; croner ("no-wildcard") when none *contains* '*' or
//      '/'. Expressions where the two disagree (e.g. "0 0-23/2 * * *", "5,*/20 1 * * *") are
//      compared only in zones without transitions in the tested years (UTC, Asia/Kolkata).
//   R2 restricted day fields: we treat dom/dow as unrestricted when the field begins with
//      '*' (SPEC: "*/2" is unrestricted), croner only when it is exactly "*". Expressions
//      where that changes the AND/OR choice (e.g. "0 0 */2 * 1") are not generated.
//   R3 never firing: expressions our parser rejects because they can never fire are not
//      sent to croner (it would search without end); they are counted.
//   R4 tzdata: croner uses Node's ICU tzdata, we use the system's. Every transition we use
//      is checked against Intl; a zone-year where the two disagree is excluded and reported.
import { spawnSync } from "node:child_process";
import { Cron } from "croner";

const driver = process.argv[2];
const CASES = Number(process.argv[3] ?? process.env.DIFF_CASES ?? 10000);
const SEED = Number(process.argv[4] ?? process.env.DIFF_SEED ?? 20260329);
const FIRES = 4;
const YEAR_FROM = 2000, YEAR_TO = 2037;

if (!driver) {
        console.error("usage: node diff-croner.mjs DRIVER [CASES] [SEED]");
        process.exit(2);
}

// mulberry32: a small seeded PRNG, so a failure can be replayed with its seed
let state = SEED >>> 0;
function rand() {
        state = (state + 0x6d2b79f5) >>> 0;
        let t = state;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = (a) => a[Math.floor(rand() * a.length)];

const DST_ZONES = [
        "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham",
        "America/Santiago", "Europe/London", "Australia/Sydney", "America/Havana",
        "Africa/Cairo", "America/St_Johns", "Asia/Jerusalem", "Pacific/Auckland",
];
const FLAT_ZONES = ["UTC", "Asia/Kolkata"];

function runDriver(lines) {
        const r = spawnSync(driver, ["--stdin"], { input: lines.join("\n") + "\n", maxBuffer: 1 << 28 });
        if (r.status !== 0)
                throw new Error(`driver failed: ${r.status} ${r.stderr}`);
        const out = r.stdout.toString().split("\n");
        out.pop();
        if (out.length !== lines.length)
                throw new Error(`driver answered ${out.length} lines for ${lines.length} requests`);
        return out;
}

// ---- R4: transitions, checked against Intl -------------------------------------------------
const fmtCache = new Map();
function intlOffset(zone, t) {
        let f = fmtCache.get(zone);
        if (!f) {
                f = new Intl.DateTimeFormat("en-US", {
                        timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
                        hour: "numeric", minute: "numeric", second: "numeric",
                });
                fmtCache.set(zone, f);
        }
        const p = {};
        for (const x of f.formatToParts(new Date(t * 1000))) p[x.type] = Number(x.value);
        return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) / 1000 - t;
}

const yearStart = (y) => Date.UTC(y, 0, 1) / 1000;
const transitions = new Map(); // zone -> [t]
const badYears = new Map();    // zone -> Set(year)
{
        const zones = [...DST_ZONES, ...FLAT_ZONES];
        const out = runDriver(zones.map((z) => `T\t${z}\t${yearStart(YEAR_FROM) - 86400}\t${yearStart(YEAR_TO + 1) + 86400}`));
        zones.forEach((z, i) => {
                const [status, ...rest] = out[i].split(" ");
                if (status !== "ok") throw new Error(`transitions of ${z}: ${out[i]}`);
                const list = [], bad = new Set();
                for (const item of rest) {
                        const [t, before, after] = item.split(":").map(Number);
                        const y = new Date(t * 1000).getUTCFullYear();
                        if (intlOffset(z, t - 1) !== before || intlOffset(z, t) !== after) bad.add(y);
                        else list.push(t);
                }
                // a transition Intl has and we lack: compare offsets at each year's quarter days
                for (let y = YEAR_FROM; y <= YEAR_TO; y++)
                        for (let q = 0; q < 4; q++) {
                                const t = Date.UTC(y, q * 3, 15) / 1000;
                                const ours = rest.filter((it) => Number(it.split(":")[0]) <= t).pop();
                                const expected = ours ? Number(ours.split(":")[2]) : intlOffset(z, yearStart(YEAR_FROM) - 86400);
                                if (intlOffset(z, t) !== expected) bad.add(y);
                        }
                transitions.set(z, list);
                badYears.set(z, bad);
        });
}

// ---- expressions ----------------------------------------------------------------------------
const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

// one list element for a field of range lo..hi; HOT values are favoured (DST hours)
function element(lo, hi, hot, names) {
        const v = () => (hot && rand() < 0.6 ? pick(hot) : int(lo, hi));
        const name = (x) => (names && rand() < 0.4 ? names[x - lo] : String(x));
        switch (int(0, 5)) {
        case 0: return `*/${int(1, Math.min(hi - lo + 1, 30))}`;
        case 1: { const a = v(), b = v(); return `${name(Math.min(a, b))}-${name(Math.max(a, b))}`; }
        case 2: { const a = v(), b = v(); return `${Math.min(a, b)}-${Math.max(a, b)}/${int(1, Math.min(hi - lo + 1, 12))}`; }
        case 3: return `${v()}/${int(1, Math.min(hi - lo + 1, 20))}`;
        default: return name(v());
        }
}
function field(lo, hi, { star = 0.3, single = 0.4, hot, names } = {}) {
        const r = rand();
        if (r < star) return "*";
        if (r < star + single) return names && rand() < 0.4 ? names[(hot && rand() < 0.6 ? pick(hot) : int(lo, hi)) - lo] : String(hot && rand() < 0.6 ? pick(hot) : int(lo, hi));
        const n = int(1, 3), parts = [];
        for (let i = 0; i < n; i++) parts.push(element(lo, hi, hot, names));
        return parts.join(",");
}

const MACROS = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];

function expression() {
        if (rand() < 0.04) return pick(MACROS);
        const sec = rand() < 0.25 ? field(0, 59, { star: 0.2, single: 0.6, hot: [0, 30, 59] }) : null;
        const min = field(0, 59, { star: 0.2, single: 0.5, hot: [0, 15, 30, 45, 59] });
        const hour = field(0, 23, { star: 0.25, single: 0.5, hot: [0, 1, 2, 3, 23] });
        const dom = field(1, 31, { star: 0.65, single: 0.2, hot: [1, 15, 28, 29, 30, 31] });
        const mon = field(1, 12, { star: 0.7, single: 0.15, hot: [3, 4, 9, 10, 11], names: MONTHS });
        let dow = field(0, 6, { star: 0.7, single: 0.15, names: DAYS });
        if (rand() < 0.05) dow = pick(["5-7", "fri-sun", "7", "sat-sun", "1-7", "0-7"]);
        return [sec, min, hour, dom, mon, dow].filter((x) => x !== null).join(" ");
}

function fields6(expr) {
        const m = { "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
                "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *" };
        const f = (m[expr] ?? expr).split(" ");
        return f.length === 5 ? ["0", ...f] : f;
}
// R1
function fixedDisagrees(expr) {
        const f = fields6(expr).slice(0, 3);
        const ours = f.every((x) => !x.startsWith("*"));
        const croner = f.every((x) => !x.includes("*") && !x.includes("/"));
        return ours !== croner;
}
// R2
function dayLogicDisagrees(expr) {
        const [, , , dom, , dow] = fields6(expr);
        const ours = dom.startsWith("*") || dow.startsWith("*");
        const croner = dom === "*" || dow === "*";
        return ours !== croner;
}

// ---- cases ---------------------------------------------------------------------------------
const cases = [];
let excludedR2 = 0, r1Flat = 0, nearTransition = 0;
while (cases.length < CASES) {
        const expr = expression();
        if (dayLogicDisagrees(expr)) { excludedR2++; continue; }
        const r1 = fixedDisagrees(expr);
        const zone = r1 ? pick(FLAT_ZONES) : rand() < 0.9 ? pick(DST_ZONES) : pick(FLAT_ZONES);
        if (r1) r1Flat++;
        const ts = transitions.get(zone);
        let after;
        if (ts.length && rand() < 0.5) {
                after = pick(ts) + int(-26 * 3600, 26 * 3600);
                nearTransition++;
        } else
                after = int(yearStart(YEAR_FROM), yearStart(YEAR_TO) - 1);
        if (badYears.get(zone).has(new Date(after * 1000).getUTCFullYear())) continue; // R4
        cases.push({ expr, zone, after });
}

const answers = runDriver(cases.map((c) => `C\t${c.zone}\t${c.after}\t${FIRES}\t${c.expr}`));

let compared = 0, rejectedNever = 0, outOfYears = 0;
const diffs = [];
const iso = (t) => new Date(t * 1000).toISOString().replace(".000", "");
for (let i = 0; i < cases.length; i++) {
        const c = cases[i], a = answers[i];
        if (a.startsWith("error ")) {
                if (a.includes("can never fire")) { rejectedNever++; continue; } // R3
                diffs.push({ ...c, ours: a, croner: "(accepted)" });
                continue;
        }
        const ours = a.split(" ").slice(1).map(Number);
        let theirs;
        try {
                const job = new Cron(c.expr, {
                        timezone: c.zone, paused: true, domAndDow: false, fixedTimeRule: "no-wildcard",
                        sloppyRanges: true, mode: "5-or-6-parts",
                });
                theirs = job.nextRuns(FIRES, new Date(c.after * 1000)).map((d) => d.getTime() / 1000);
                job.stop();
        } catch (err) {
                diffs.push({ ...c, ours: a, croner: `threw: ${err.message}` });
                continue;
        }
        // R4 also covers fires that run past the years whose tzdata was checked
        const lastYear = new Date(Math.max(...ours, ...theirs, c.after) * 1000).getUTCFullYear();
        if (lastYear > YEAR_TO || badYears.get(c.zone).has(lastYear)) { outOfYears++; continue; }
        compared++;
        if (ours.length !== theirs.length || ours.some((t, j) => t !== theirs[j]))
                diffs.push({ ...c, ours: ours.map(iso).join(" "), croner: theirs.map(iso).join(" ") });
}

const bad = [...badYears].filter(([, s]) => s.size).map(([z, s]) => `${z}: ${[...s].sort().join(",")}`);
console.log(`seed ${SEED}: ${cases.length} cases (${nearTransition} within 26h of a transition), ` +
        `${compared} compared with ${FIRES} fires each`);
console.log(`excluded: R1 compared in flat zones only ${r1Flat}, R2 not generated ${excludedR2}, ` +
        `R3 never-firing ${rejectedNever}, R4 past checked years ${outOfYears}` +
        (bad.length ? `; tzdata disagrees in ${bad.join("; ")}` : ""));
for (const d of diffs.slice(0, 20))
        console.log(`DIFF "${d.expr}" ${d.zone} after ${iso(d.after)} (${d.after})\n  ours:   ${d.ours}\n  croner: ${d.croner}`);
if (diffs.length) {
        console.log(`${diffs.length} differences`);
        process.exit(1);
}
if (compared < CASES * 0.9) {
        console.log(`only ${compared} of ${CASES} cases compared`);
        process.exit(1);
}
console.log("no differences");
