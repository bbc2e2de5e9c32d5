/**
 * tabby-ipam: the CNI IPAM plugin executable. stdout carries only the CNI result or error JSON;
 * logs go to the file named by `log_file_path` (default /var/log/tabby/cni.log).
 */
import { runIpamProcess } from './ipam/run.js';

process.exitCode = await runIpamProcess();
