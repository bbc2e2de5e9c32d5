import { notImplemented } from '../lib/stub.js';

notImplemented('tabby-bgp', 'the standalone BGP daemon comes with the BGP speaker issue');
