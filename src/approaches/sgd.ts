/** SGD: keep training the same network on each new task (spec §5). */
import { type ParamValues, withDefaults } from '../core/params';
import { type Network } from '../nets/network';
import { NetworkLearner } from './base';
import { SGD_PARAMS } from './catalog';

export type SgdParams = ParamValues<typeof SGD_PARAMS>;

export class Sgd extends NetworkLearner {
  readonly id: string = 'sgd';
  readonly hyper: SgdParams;
  constructor(net: Network, params: Partial<SgdParams> = {}) {
    const hyper = withDefaults(SGD_PARAMS, params, 'an SGD approach');
    super(net, hyper.clipNorm);
    this.hyper = hyper;
  }
}
