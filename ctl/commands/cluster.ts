import { notImplementedGroup } from './not-implemented.js';

export const clusterCommand = notImplementedGroup('cluster', 'Local demo cluster: up, down, status', 'demo/deploy');
