export * from './experiment';
export * from './errors';
export * from './schedules';
export { loadExperimentFile } from './loader';
