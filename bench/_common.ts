/**
 * The shared benchmark helpers' old address, kept for `bench/micro/`: the
 * helpers themselves live in `_workload.ts`, `_measure.ts`, `_report.ts`
 * and `_chart.ts`. New code imports those directly.
 *
 * @module
 */
export * from "./_chart.ts";
export * from "./_measure.ts";
export * from "./_report.ts";
export * from "./_workload.ts";
