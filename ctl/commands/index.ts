/**
 * Every tabbyctl command, in help order. To add a command or group, write a module in this folder
 * exporting a CommandFactory and list it here (the ipam/node/bgp/cluster stubs are replaced in place).
 */
import { bgpCommand } from './bgp.js';
import { clusterCommand } from './cluster.js';
import type { CommandFactory } from './common.js';
import { deleteCommand } from './delete.js';
import { getCommand } from './get.js';
import { ipamCommand } from './ipam.js';
import { labelCommand } from './label.js';
import { applyCommand, createCommand, replaceCommand } from './mutate.js';
import { nodeCommand } from './node.js';
import { patchCommand } from './patch.js';
import { validateCommand } from './validate.js';
import { versionCommand } from './version.js';

export const COMMANDS: readonly CommandFactory[] = [
  createCommand,
  applyCommand,
  replaceCommand,
  deleteCommand,
  getCommand,
  labelCommand,
  patchCommand,
  validateCommand,
  ipamCommand,
  nodeCommand,
  bgpCommand,
  clusterCommand,
  versionCommand,
];
