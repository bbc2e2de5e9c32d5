import { notImplemented } from '../lib/stub.js';

notImplemented('tabbyctl', 'resource commands come with the Foundation issue');
