# Sourced by the end-to-end scripts: parts of a `vts train` run's metrics.json, as one line each,
# for comparing two runs that must agree bit for bit (the numbers as written).
# loss_history RUN_DIR: the mean loss of every epoch.
loss_history() { tr -d ' \n' <"$1/metrics.json" | grep -o '"loss_history":\[[^]]*\]'; }
# pretrain_loss_history RUN_DIR: the same for the classifier pretraining's epochs (--pretrain-epochs).
pretrain_loss_history() { tr -d ' \n' <"$1/metrics.json" | grep -o '"pretrain_loss_history":\[[^]]*\]'; }
# evaluations RUN_DIR: each evaluation's scores, without its time.
evaluations() {
  tr -d ' \n' <"$1/metrics.json" | grep -o '"evaluations":\[[^]]*\]' | sed 's/,"seconds":[0-9.e+-]*//g'
}
