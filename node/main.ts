import { notImplemented } from '../lib/stub.js';

notImplemented('tabby-node', 'the per-node agent comes with the tabby-node issue');
