import { notImplementedGroup } from './not-implemented.js';

export const nodeCommand = notImplementedGroup('node', 'Node operations: status, checksystem', 'tabby-node');
